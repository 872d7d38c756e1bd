using System.Management.Automation;
using WgPowerShell.Completion;
using WgPowerShell.Models;

namespace WgPowerShell.Cmdlets;

/// <summary>Get-WgServer: the servers of this session, optionally by name (wildcards allowed).</summary>
[Cmdlet(VerbsCommon.Get, "WgServer")]
[OutputType(typeof(WgServer))]
public sealed class GetWgServerCommand : WgCmdletBase
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        var all = Session.All();
        if (Name is null || Name.Length == 0)
        {
            foreach (var s in all) WriteObject(new WgServer(s));
            return;
        }
        foreach (var n in Name)
        {
            var pattern = new WildcardPattern(n, WildcardOptions.IgnoreCase);
            bool any = false;
            foreach (var s in all)
                if (pattern.IsMatch(s.Name)) { any = true; WriteObject(new WgServer(s)); }
            if (!any && !WildcardPattern.ContainsWildcardCharacters(n))
                WriteError(new ErrorRecord(new ItemNotFoundException($"No WireGuard server named '{n}' in this session."),
                    "WgServerNotFound", ErrorCategory.ObjectNotFound, n));
        }
    }
}
