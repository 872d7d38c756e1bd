using System.Net;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgFleet;

/// <summary>
/// An instance's side of the cross-instance hub (docs/fleet.md): a <see cref="MeshTunnel"/> with a node key made at
/// start (in memory only; its public half and the mesh endpoint go into the instances table), whose peers follow the
/// registry: every other live instance with a mesh, holding the AllowedIPs of the clients whose latest handshake
/// (the live state) is on that instance. Refreshed after every report.
/// </summary>
internal sealed class FleetMesh : IDisposable
{
    private readonly MeshTunnel _tunnel;
    private readonly string _selfId;

    private FleetMesh(MeshTunnel tunnel, string selfId, string endpoint)
    {
        _tunnel = tunnel;
        _selfId = selfId;
        Endpoint = endpoint;
    }

    public MeshTunnel Tunnel => _tunnel;
    public WgKey NodeKey => _tunnel.NodeKey;
    /// <summary>host:port the other instances reach this mesh at.</summary>
    public string Endpoint { get; }

    /// <summary>Without <paramref name="listenPort"/> the mesh listens on the advertised endpoint's port.</summary>
    public static FleetMesh Start(VPNServer server, string selfId, int? listenPort, string? advertised, IPAddress? bindAddress, TimeProvider time)
    {
        if (advertised is null && (bindAddress is null || bindAddress.Equals(IPAddress.Any) || bindAddress.Equals(IPAddress.IPv6Any)))
            throw new WgException(WgErrorKind.InvalidArgument, "MeshEndpointRequired",
                "The mesh endpoint cannot be derived from a wildcard bind address: give -MeshEndpoint host:port (where the other instances reach this one) or -BindAddress.");
        IPEndPoint? at = null;
        if (advertised is not null && (!IPEndPoint.TryParse(advertised, out at) || at.Port == 0))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidMeshEndpoint", $"-MeshEndpoint '{advertised}' is not an address:port.");
        var tunnel = MeshTunnel.Start(server, WgPrivateKey.Generate(), listenPort ?? at!.Port, bindAddress, time);
        string endpoint = advertised ?? new IPEndPoint(bindAddress!, tunnel.ListenPort).ToString();
        return new FleetMesh(tunnel, selfId, endpoint);
    }

    /// <summary>Sets the mesh's peers from the registry's instances and live state.</summary>
    public void Refresh(IReadOnlyList<InstanceInfo> instances, IReadOnlyDictionary<WgKey, FleetPeerLive> live,
        IReadOnlyDictionary<WgKey, FleetPeer> peers, DateTimeOffset now, TimeSpan staleAfter) =>
        _tunnel.SetPeers(Routes(_selfId, instances, live, peers, now, staleAfter));

    /// <summary>
    /// The mesh peers an instance should have: each other instance that is not stopped, has a node key and a mesh
    /// endpoint, and beat within <paramref name="staleAfter"/>, with the AllowedIPs of the peers whose session the live
    /// state puts on it (none of the peers held here or by a dead instance: those are not relayed).
    /// </summary>
    internal static IReadOnlyList<MeshPeer> Routes(string selfId, IReadOnlyList<InstanceInfo> instances,
        IReadOnlyDictionary<WgKey, FleetPeerLive> live, IReadOnlyDictionary<WgKey, FleetPeer> peers, DateTimeOffset now, TimeSpan staleAfter)
    {
        var held = new Dictionary<string, List<IpPrefix>>(StringComparer.Ordinal);
        foreach (var i in instances)
        {
            if (i.Id == selfId || i.Stopped || i.NodeKey is null || now - i.Heartbeat > staleAfter) continue;
            if (!IPEndPoint.TryParse(i.MeshEndpoint ?? "", out var ep) || ep.Port == 0) continue;
            held[i.Id] = [];
        }
        foreach (var (key, state) in live)
            if (state.Instance is { } at && held.TryGetValue(at, out var list) && peers.TryGetValue(key, out var peer) && peer.Enabled)
                list.AddRange(peer.AllowedIPs);
        return instances.Where(i => held.ContainsKey(i.Id))
            .Select(i => new MeshPeer(i.NodeKey!.Value, IPEndPoint.Parse(i.MeshEndpoint!), held[i.Id]))
            .ToArray();
    }

    public void Dispose() => _tunnel.Dispose();
}
