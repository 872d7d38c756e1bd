using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;

namespace WgEngine.Tests.Gateway;

/// <summary>An in-memory IWireGuardBackend that records calls and can be told to fail, for facade tests.</summary>
internal sealed class FakeBackend(InterfaceConfig config) : IWireGuardBackend
{
    private readonly Dictionary<WgKey, PeerConfig> _peers = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public InterfaceConfig Config { get; } = config;
    public List<string> Calls { get; } = new();
    public Exception? FailNextAdd { get; set; }
    public InterfaceStats Stats { get; set; }

    public string Kind => "Fake";
    public WgKey PublicKey { get; } = config.PrivateKey.PublicKey;
    public int ListenPort => Config.ListenPort == 0 ? 40000 : Config.ListenPort;
    public bool IsRunning { get; private set; } = true;
    public Task Completion => _done.Task;

    public void AddPeer(PeerConfig peer)
    {
        lock (_peers)
        {
            Calls.Add("add " + peer.PublicKey);
            if (FailNextAdd is { } e) { FailNextAdd = null; throw e; }
            if (!_peers.TryAdd(peer.PublicKey, peer))
                throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists", "dup");
        }
    }

    public void UpdatePeer(PeerConfig peer)
    {
        lock (_peers)
        {
            Calls.Add("update " + peer.PublicKey);
            if (!_peers.ContainsKey(peer.PublicKey)) throw new WgException(WgErrorKind.NotFound, "PeerNotFound", "nf");
            _peers[peer.PublicKey] = peer;
        }
    }

    public bool RemovePeer(WgKey publicKey) { lock (_peers) { Calls.Add("remove " + publicKey); return _peers.Remove(publicKey); } }

    public PeerConfig? Config_(WgKey k) { lock (_peers) return _peers.GetValueOrDefault(k); }

    public PeerStatus? GetPeer(WgKey publicKey) { lock (_peers) return _peers.TryGetValue(publicKey, out var p) ? ToStatus(p) : null; }

    public IReadOnlyList<PeerStatus> GetPeers() { lock (_peers) return _peers.Values.Select(ToStatus).ToList(); }

    public InterfaceStats GetStats() => Stats;

    public void Stop() { IsRunning = false; _done.TrySetResult(); }

    public void Dispose() => Stop();

    private static PeerStatus ToStatus(PeerConfig p) => new()
    {
        PublicKey = p.PublicKey, Name = p.Name, AllowedIPs = p.AllowedIPs, Endpoint = p.Endpoint,
        PersistentKeepalive = p.PersistentKeepalive, HasPresharedKey = p.PresharedKey is not null,
    };
}
