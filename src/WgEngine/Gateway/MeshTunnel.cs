using System.Net;
using System.Net.Sockets;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>One other gateway on the mesh: its node key, where its mesh listens, and the client prefixes it holds sessions for.</summary>
public sealed record MeshPeer(WgKey NodeKey, IPEndPoint Endpoint, IReadOnlyList<IpPrefix> AllowedIPs);

/// <summary>
/// A second WireGuard device beside a gateway (docs/fleet.md, "Cross-instance hub"): its own node key and UDP
/// port, its peers the other gateways, each with the prefixes of the clients whose sessions it holds. It is the
/// gateway's <see cref="IPacketRelay"/>: a packet for a client without a session on this gateway goes into the
/// tunnel to the gateway holding it, routed by those prefixes. What arrives from the mesh is delivered to this
/// gateway's own clients only (the gateway's <c>SendPacket</c>, which never relays), and the mesh device itself
/// is isolated (no forwarding between mesh peers): a packet crosses the mesh at most once, so there is no loop.
/// </summary>
public sealed class MeshTunnel : IPacketRelay, IDisposable
{
    private readonly WgDevice _mesh;
    private readonly WgDevice _gateway;
    private readonly object _lock = new();
    private Dictionary<WgKey, MeshPeer> _peers = new();

    private MeshTunnel(WgDevice mesh, WgDevice gateway)
    {
        _mesh = mesh;
        _gateway = gateway;
    }

    /// <summary>Starts the mesh device on <paramref name="listenPort"/> (0: a free one) and attaches it as <paramref name="server"/>'s
    /// relay. Takes ownership of <paramref name="nodeKey"/>. The server must run the userspace engine.</summary>
    public static MeshTunnel Start(VPNServer server, WgPrivateKey nodeKey, int listenPort, IPAddress? bindAddress = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(nodeKey);
        var gateway = server.UserspaceDevice ?? throw new WgException(WgErrorKind.InvalidOperation, "MeshNeedsUserspace",
            $"Server '{server.Name}' does not run the userspace engine: it has no route hook for a mesh.");
        return Start(gateway, nodeKey, CreateBind(listenPort, bindAddress), time ?? TimeProvider.System);
    }

    /// <summary>With a given bind (in-memory binds in tests).</summary>
    internal static MeshTunnel Start(WgDevice gateway, WgPrivateKey nodeKey, IBind bind, TimeProvider time, int preallocatedBuffers = 256)
    {
        var delivery = new LocalDelivery(gateway);
        WgDevice mesh;
        try
        {
            mesh = new WgDevice(nodeKey, bind, new DeviceOptions
            {
                TimeProvider = time, Egress = delivery, PreallocatedBuffers = preallocatedBuffers,
                // No forwarding between mesh peers: whatever comes in goes to the gateway's own clients or nowhere.
                Policy = new Policy.TrafficPolicy(time, peerIsolation: true),
            });
        }
        catch
        {
            bind.Dispose();
            throw;
        }
        var tunnel = new MeshTunnel(mesh, gateway);
        delivery.Owner = tunnel;
        mesh.Start();
        gateway.SetRelay(tunnel);
        return tunnel;
    }

    private static IBind CreateBind(int port, IPAddress? address)
    {
        try { return new RebindableBind(port, address); }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
        {
            throw new WgException(WgErrorKind.ResourceUnavailable, "MeshPortInUse", $"Cannot bind the mesh's UDP port {port}; pick another -MeshListenPort, or 0 for a free one.", e);
        }
    }

    public WgKey NodeKey => _mesh.PublicKey;
    /// <summary>The mesh's own device (tests: its counters and packet-thread allocations).</summary>
    internal WgDevice Device => _mesh;
    public int ListenPort => _mesh.ListenPort;
    /// <summary>Packets this gateway sent into the mesh.</summary>
    public long Relayed => _gateway.Counters.Relayed;
    /// <summary>Packets from the mesh handed to this gateway's clients, and those it had no client (with a route) for.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);
    public long Undeliverable => Interlocked.Read(ref _undeliverable);
    private long _delivered, _undeliverable;

    /// <summary>The mesh peers now: node key, endpoint, prefixes.</summary>
    public IReadOnlyList<MeshPeer> Peers { get { lock (_lock) return _peers.Values.ToArray(); } }

    /// <summary>The mesh device's peer state (handshakes, bytes), for diagnostics.</summary>
    public IReadOnlyList<PeerStatus> PeerStatuses => _mesh.GetPeers();

    /// <summary>
    /// Makes the mesh's peers exactly <paramref name="peers"/>: new ones added, gone ones removed, changed ones
    /// updated in place (their sessions kept). Every prefix moving between peers is cleared first, so a client
    /// moving from one gateway to another never makes two peers claim it.
    /// </summary>
    public void SetPeers(IReadOnlyList<MeshPeer> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        lock (_lock)
        {
            var next = new Dictionary<WgKey, MeshPeer>();
            foreach (var p in peers)
                if (p.NodeKey != NodeKey) next[p.NodeKey] = p;
            foreach (var (key, old) in _peers)
            {
                if (!next.TryGetValue(key, out var now)) _mesh.RemovePeer(key);
                else if (!old.AllowedIPs.SequenceEqual(now.AllowedIPs)) _mesh.UpdatePeer(new PeerConfig { PublicKey = key, Endpoint = old.Endpoint });
            }
            foreach (var (key, p) in next)
            {
                var config = new PeerConfig { PublicKey = key, Endpoint = p.Endpoint, AllowedIPs = p.AllowedIPs };
                if (_peers.TryGetValue(key, out var old) && old.Endpoint.Equals(p.Endpoint) && old.AllowedIPs.SequenceEqual(p.AllowedIPs)) continue;
                if (_peers.ContainsKey(key)) _mesh.UpdatePeer(config);
                else _mesh.AddPeer(config);
            }
            _peers = next;
        }
    }

    /// <summary>Into the mesh, to the gateway whose prefixes hold the destination; false when none does.</summary>
    public bool TryRelay(ReadOnlySpan<byte> ipPacket) => _mesh.SendPacket(ipPacket);

    public void Dispose()
    {
        _gateway.SetRelay(null);
        _mesh.Dispose();
    }

    /// <summary>The mesh device's egress: a packet from another gateway, to this gateway's own clients only.</summary>
    private sealed class LocalDelivery(WgDevice gateway) : IEgress
    {
        public MeshTunnel? Owner;

        public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet)
        {
            if (gateway.SendPacket(packet)) Interlocked.Increment(ref Owner!._delivered);
            else Interlocked.Increment(ref Owner!._undeliverable);
        }
    }
}
