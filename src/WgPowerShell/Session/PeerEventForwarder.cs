using System.Management.Automation;
using WgEngine.Gateway;
using WgPowerShell.Models;

namespace WgPowerShell.Session;

/// <summary>
/// An in-process server's peer events as PowerShell engine events of the runspace that started it:
/// WireGuardGateway.PeerCreated, .PeerRemoved, .PeerEnabled, .PeerDisabled, .PeerExpired, with the
/// WgPeer as $Event.SourceArgs[0] and the server's name as $Event.Sender. GenerateEvent only queues:
/// the engine's event loop never waits for the runspace.
/// </summary>
internal static class PeerEventForwarder
{
    public const string Prefix = "WireGuardGateway.Peer";

    public static void Forward(VPNServer server, PSEventManager events) =>
        server.PeerEvent += e => events.GenerateEvent(Prefix + e.Kind, e.Server, [WgPeer.From(e.Server, e.Peer)], null);
}
