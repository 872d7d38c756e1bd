using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgFleet;
using WgPowerShell.Models;
using WgPowerShell.Session;

namespace WgPowerShell.Cmdlets;

// Connect-WgServer -Registry -Fleet (docs/fleet.md): the peer cmdlets act on a fleet through its registry, from a
// session that runs no instance; each change is one transaction, applied by every instance within a second.
public sealed partial class ConnectWgServerCommand
{
    private const string RegistrySet = "Registry";

    /// <summary>The fleet registry: an Npgsql connection string (it may hold a password and is never printed).</summary>
    [Parameter(Mandatory = true, ParameterSetName = RegistrySet)]
    [ValidateNotNullOrEmpty]
    public string? Registry { get; set; }

    /// <summary>The fleet to manage.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RegistrySet)]
    [ValidateNotNullOrEmpty]
    public string? Fleet { get; set; }

    /// <summary>A file whose first line is the fleet secret (it encrypts the preshared keys).</summary>
    [Parameter(Mandatory = true, ParameterSetName = RegistrySet)]
    [ValidateNotNullOrEmpty]
    public string? FleetSecretPath { get; set; }

    private void ConnectFleet()
    {
        var registry = FleetParameters.Open(this, Registry!, Fleet!, FleetSecretPath!);
        FleetGateway gateway;
        try { gateway = new FleetGateway(registry, null); }
        catch (WgException e)
        {
            registry.Dispose();
            ThrowTerminatingError(new ErrorRecord(e, e.ErrorId, Category(e.Kind), Fleet));
            return;
        }
        string where = $"fleet '{Fleet}' at {registry.Location}";
        Session.SetRemote(new FleetConnection(Session, gateway, where));
        WriteVerbose($"Connected to {where}.");
        WriteObject(new WgConnection { Endpoint = where, Kind = "Fleet", Servers = [gateway.Name] });
    }
}
