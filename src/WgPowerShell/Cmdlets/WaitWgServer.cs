using System.Management.Automation;
using System.Runtime.InteropServices;
using WgPowerShell.Completion;
using WgEngine.Gateway;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Wait-WgServer: blocks until the servers stop, the timeout passes, or Ctrl+C, so that
/// `Start-WgServer | Wait-WgServer` can be a container's entry point. While it waits, SIGTERM (what
/// `docker stop` and Kubernetes send) stops every server of the session cleanly (UAPI socket removed,
/// config file complete) and ends the wait normally, so the process exits 0 instead of dying with 143.
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "WgServer")]
[OutputType(typeof(WgServer))]
public sealed class WaitWgServerCommand : WgCmdletBase
{
    private readonly List<IGatewayServer> _servers = new();
    private readonly CancellationTokenSource _stop = new();

    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Server")]
    [ServerNameTransformation]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>Seconds; -1 (default) waits forever.</summary>
    [Parameter]
    [ValidateRange(-1, int.MaxValue)]
    public int Timeout { get; set; } = -1;

    /// <summary>Outputs the servers once they have stopped.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        string?[] names = Name is { Length: > 0 } ? Name : new string?[] { null };
        foreach (var n in names)
            if (ResolveServer(n) is { } s && !_servers.Contains(s)) _servers.Add(s);
    }

    protected override void EndProcessing()
    {
        if (_servers.Count == 0) return;
        var all = Task.WhenAll(_servers.Select(s => s.Completion));
        WriteVerbose($"Waiting for {string.Join(", ", _servers.Select(s => s.Name))} to stop" + (Timeout >= 0 ? $" (at most {Timeout} s)." : " (Ctrl+C to stop waiting)."));
        int ms = Timeout < 0 || Timeout > int.MaxValue / 1000 ? System.Threading.Timeout.Infinite : Timeout * 1000;
        bool done;
        bool terminated = false;
        var session = Session;
        // Not on Windows (no SIGTERM there); the handler runs on a runtime thread: it only stops servers.
        using var sigterm = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;   // keep the process: the servers are stopped and the pipeline ends normally
            terminated = true;
            session.StopAll();
        });
        try
        {
            done = all.Wait(ms, _stop.Token);
        }
        catch (OperationCanceledException)
        {
            return;   // Ctrl+C / pipeline stopped: stop waiting, leave the servers running
        }
        catch (AggregateException)
        {
            done = true;  // a backend failed: it has stopped, which is what we waited for
        }
        if (terminated) WriteVerbose("SIGTERM: stopped every server of this session.");
        if (!done)
        {
            WriteError(new ErrorRecord(new TimeoutException($"The servers were still running after {Timeout} s."),
                "WaitTimeout", ErrorCategory.OperationTimeout, Timeout));
            return;
        }
        if (PassThru) foreach (var s in _servers) WriteObject(new WgServer(s));
    }

    protected override void StopProcessing() => _stop.Cancel();
}
