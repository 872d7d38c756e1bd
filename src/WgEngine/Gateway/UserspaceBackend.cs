using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using WgEngine.Crypto;

namespace WgEngine.Gateway;

/// <summary>
/// PROVISIONAL (walking skeleton, being replaced by the real device): holds peers in memory and binds
/// the UDP port, so the facade and cmdlets can be built against the backend contract.
/// </summary>
public sealed class UserspaceBackend : IWireGuardBackend
{
    private readonly ConcurrentDictionary<WgKey, PeerConfig> _peers = new();
    private readonly Socket _socket;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public UserspaceBackend(InterfaceConfig config)
    {
        PublicKey = config.PrivateKey.PublicKey;
        _socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
        try
        {
            _socket.Bind(new IPEndPoint(IPAddress.IPv6Any, config.ListenPort));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            _socket.Dispose();
            throw new WgException(WgErrorKind.ResourceUnavailable, "ListenPortInUse",
                $"UDP port {config.ListenPort} is already in use; pick another -ListenPort or 0 for a free one.", e);
        }
        ListenPort = ((IPEndPoint)_socket.LocalEndPoint!).Port;
        IsRunning = true;
    }

    public string Kind => "Userspace";
    public WgKey PublicKey { get; }
    public int ListenPort { get; }
    public bool IsRunning { get; private set; }
    public Task Completion => _completion.Task;

    public void AddPeer(PeerConfig peer)
    {
        if (!_peers.TryAdd(peer.PublicKey, peer))
            throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists", $"A peer with public key {peer.PublicKey} already exists.");
    }

    public void UpdatePeer(PeerConfig peer)
    {
        if (!_peers.ContainsKey(peer.PublicKey))
            throw new WgException(WgErrorKind.NotFound, "PeerNotFound", $"No peer with public key {peer.PublicKey}.");
        _peers[peer.PublicKey] = peer;
    }

    public bool RemovePeer(WgKey publicKey) => _peers.TryRemove(publicKey, out _);

    public PeerStatus? GetPeer(WgKey publicKey) => _peers.TryGetValue(publicKey, out var p) ? ToStatus(p) : null;

    public IReadOnlyList<PeerStatus> GetPeers() => _peers.Values.Select(ToStatus).ToList();

    public InterfaceStats GetStats() => default;

    public void Stop()
    {
        if (!IsRunning) return;
        IsRunning = false;
        _socket.Dispose();
        _completion.TrySetResult();
    }

    public void Dispose() => Stop();

    private static PeerStatus ToStatus(PeerConfig p) => new()
    {
        PublicKey = p.PublicKey, Name = p.Name, AllowedIPs = p.AllowedIPs, Endpoint = p.Endpoint,
        PersistentKeepalive = p.PersistentKeepalive, HasPresharedKey = p.PresharedKey is not null,
    };
}
