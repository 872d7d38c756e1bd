using System.Management.Automation;

namespace WgPowerShell.Cmdlets;

/// <summary>Disconnect-WgServer: ends Connect-WgServer's connection; the cmdlets act on this process's servers again.</summary>
[Cmdlet(VerbsCommunications.Disconnect, "WgServer")]
[OutputType(typeof(void))]
public sealed class DisconnectWgServerCommand : WgCmdletBase
{
    protected override void ProcessRecord()
    {
        var remote = Session.Remote;
        if (remote is null)
        {
            WriteVerbose("Not connected to a gateway host or a fleet.");
            return;
        }
        Session.SetRemote(null);
        WriteVerbose($"Disconnected from {remote.Endpoint}.");
    }
}
