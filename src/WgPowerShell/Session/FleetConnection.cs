using WgEngine.Gateway;
using WgFleet;

namespace WgPowerShell.Session;

/// <summary>
/// A runspace's fleet (docs/fleet.md): Connect-WgServer -Registry (management only) or Start-WgServer -Registry
/// (with an instance in this process). The cmdlets then act on the one <see cref="FleetGateway"/>; when its
/// instance stops, the connection closes itself and the session acts on its own servers again.
/// </summary>
internal sealed class FleetConnection : IServerConnection
{
    private readonly FleetGateway _gateway;

    public FleetConnection(WgSession session, FleetGateway gateway, string location)
    {
        _gateway = gateway;
        Endpoint = location;
        if (gateway.Instance is not null)
            gateway.Completion.ContinueWith(_ => session.CloseRemote(this), CancellationToken.None, TaskContinuationOptions.RunContinuationsAsynchronously, TaskScheduler.Default);
    }

    public string Endpoint { get; }
    public FleetGateway Gateway => _gateway;

    public IReadOnlyList<IGatewayServer> All() => [_gateway];

    public bool TryGet(string name, out IGatewayServer server)
    {
        server = _gateway;
        return string.Equals(name, _gateway.Name, StringComparison.OrdinalIgnoreCase) || string.Equals(name, _gateway.Fleet, StringComparison.OrdinalIgnoreCase);
    }

    public void Dispose() => _gateway.Dispose();
}
