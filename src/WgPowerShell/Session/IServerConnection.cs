using WgEngine.Gateway;

namespace WgPowerShell.Session;

/// <summary>
/// What a runspace's cmdlets act on instead of its in-process servers while one is open: a gateway host's
/// management API (<see cref="RemoteConnection"/>) or a fleet's registry (<see cref="FleetConnection"/>).
/// </summary>
internal interface IServerConnection : IDisposable
{
    /// <summary>Where it leads, for messages (never a token or a password).</summary>
    string Endpoint { get; }
    IReadOnlyList<IGatewayServer> All();
    bool TryGet(string name, out IGatewayServer server);
}
