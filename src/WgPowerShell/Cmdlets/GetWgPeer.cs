using System.Management.Automation;
using WgPowerShell.Completion;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>Get-WgPeer: the peers of a server, optionally by key or by name (wildcards).</summary>
[Cmdlet(VerbsCommon.Get, "WgPeer")]
[OutputType(typeof(WgPeer))]
public sealed class GetWgPeerCommand : WgPeerCmdletBase
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateWgKey]
    [ArgumentCompleter(typeof(PeerKeyCompleter))]
    public string[]? PublicKey { get; set; }

    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PeerNameCompleter))]
    public string[]? Name { get; set; }


    protected override void ProcessRecord()
    {
        var server = ResolveServer();
        if (server is null) return;
        if (PublicKey is { Length: > 0 } && !FromServerObject(nameof(PublicKey)))
        {
            foreach (var text in PublicKey)
            {
                var p = server.GetPeerInfo(Parse.Key(text));
                if (p is null)
                    WritePeerNotFound(server, text);
                else if (NameMatches(p.Name))
                    WriteObject(WgPeer.From(server.Name, p, (server as WgFleet.FleetGateway)?.SessionInstance(p.PublicKey)));
            }
            return;
        }
        var patterns = Name?.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
        var matched = new bool[Name?.Length ?? 0];
        foreach (var p in server.GetPeers())
        {
            if (patterns is null) { WriteObject(WgPeer.From(server.Name, p, (server as WgFleet.FleetGateway)?.SessionInstance(p.PublicKey))); continue; }
            bool any = false;
            for (int i = 0; i < patterns.Length; i++)
                if (patterns[i].IsMatch(p.Name ?? "")) { matched[i] = true; any = true; }
            if (any) WriteObject(WgPeer.From(server.Name, p, (server as WgFleet.FleetGateway)?.SessionInstance(p.PublicKey)));
        }
        for (int i = 0; i < matched.Length; i++)
            if (!matched[i] && !WildcardPattern.ContainsWildcardCharacters(Name![i]))
                WriteError(new ErrorRecord(new ItemNotFoundException($"No peer named '{Name[i]}' on server '{server.Name}'."),
                    "PeerNotFound", ErrorCategory.ObjectNotFound, Name[i]));
    }

    private bool NameMatches(string? name) =>
        Name is not { Length: > 0 } || Name.Any(n => new WildcardPattern(n, WildcardOptions.IgnoreCase).IsMatch(name ?? ""));
}
