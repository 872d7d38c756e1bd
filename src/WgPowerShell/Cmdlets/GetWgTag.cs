using System.Management.Automation;
using WgEngine.Gateway;
using WgPowerShell.Models;

namespace WgPowerShell.Cmdlets;

/// <summary>Get-WgTag: the tags of a server (those with rules and those peers carry), with their rules and member counts.</summary>
[Cmdlet(VerbsCommon.Get, "WgTag")]
[OutputType(typeof(WgTag))]
public sealed class GetWgTagCommand : WgPeerCmdletBase
{
    /// <summary>Tag names; wildcards allowed.</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        var server = ResolveServer();
        if (server is null) return;
        foreach (var tag in Read(server))
            if (Name is null || Name.Any(n => WildcardPattern.Get(n, WildcardOptions.IgnoreCase).IsMatch(tag.Name)))
                WriteObject(tag);
    }

    internal static List<WgTag> Read(IGatewayServer server)
    {
        var rules = server.TagRules;
        var members = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        foreach (var t in rules.Keys) members[t] = 0;
        foreach (var p in server.GetPeers())
            foreach (var t in p.Tags) members[t] = members.GetValueOrDefault(t) + 1;
        return [.. members.OrderBy(m => m.Key, StringComparer.OrdinalIgnoreCase).Select(m => new WgTag
        {
            Server = server.Name, Name = m.Key, PeerCount = m.Value,
            Acl = rules.TryGetValue(m.Key, out var r) ? [.. r.Select(x => x.ToString())] : [],
        })];
    }
}
