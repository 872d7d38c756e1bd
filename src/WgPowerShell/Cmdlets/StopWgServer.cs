using System.Management.Automation;
using WgEngine.Contracts;
using WgPowerShell.Completion;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>Stop-WgServer: stops servers, closes their sockets, forgets them (their names become free).</summary>
[Cmdlet(VerbsLifecycle.Stop, "WgServer", SupportsShouldProcess = true)]
[OutputType(typeof(WgServer))]
public sealed class StopWgServerCommand : WgCmdletBase
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Server")]
    [ServerNameTransformation]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>Outputs the stopped servers (State = Stopped).</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        string?[] names = Name is { Length: > 0 } ? Name : new string?[] { null };
        foreach (var n in names)
        {
            var server = ResolveServer(n);
            if (server is null) continue;
            if (!ShouldProcess($"WireGuard server '{server.Name}' on UDP port {server.ListenPort}", "Stop")) continue;
            try { Session.Stop(server); }
            catch (WgEngine.Contracts.WgException e) { WriteWgError(e, server.Name); continue; }
            WriteVerbose($"Stopped WireGuard server '{server.Name}'.");
            if (PassThru) WriteObject(new WgServer(server));
        }
    }
}
