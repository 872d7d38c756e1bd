using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Net;
using WgEngine.PacketPlane;
using WgEngine.Session;

namespace WgEngine.Device;

/// <summary>
/// One WireGuard interface: identity, peers, cryptokey routing and the threads that move packets.
/// Threads: one receiver on the bind, one handshake processor, one crypto worker per core (a peer's
/// packets always go to the same worker, which keeps each peer's order), and one timer sweep.
/// Split across WgDevice.*.cs by concern: receive, handshake, send, route, timers.
/// </summary>
internal sealed partial class WgDevice : IDisposable
{
    private WgPrivateKey _privateKey;                // replaced by SetPrivateKey (WgDevice.Config.cs)
    private readonly IBind _bind;
    private readonly DeviceOptions _options;
    private readonly TimeProvider _time;
    /// <summary>The §6 intervals in this clock's ticks (Session.ProtocolTimes).</summary>
    private readonly ProtocolTimes _times;
    private readonly ConcurrentDictionary<WgKey, Peer> _peers = new();
    private readonly AllowedIps<Peer> _allowedIps = new();
    private readonly IndexTable _indices = new();
    private readonly PacketBufferPool _pool;
    private Noise.CookieChecker _cookieChecker;
    private readonly byte[] _initialHashForUs = new byte[32];
    private readonly byte[][] _ownAddresses;
    private readonly Worker[] _workers;
    // No helper threads until Start (or StartCryptoHelpers): an unstarted device (fuzzing, tests) seals and opens
    // on the calling thread.
    private CryptoHelperPool _helpers = new(0);
    private readonly HandshakeQueue _handshakes;
    private readonly HandshakeRateLimiter _rateLimiter;
    private readonly int _loadThreshold;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _configLock = new();
    private Thread? _receiver;
    private ITimer? _timer;
    private int _nextWorker;
    private int _started, _stopped;

    public WgDevice(WgPrivateKey privateKey, IBind bind, DeviceOptions? options = null)
    {
        _privateKey = privateKey;
        _bind = bind;
        _options = options ?? new DeviceOptions();
        _time = _options.TimeProvider;
        _times = new ProtocolTimes(_time.TimestampFrequency);
        _pool = new PacketBufferPool(8192, _options.PreallocatedBuffers);
        _cookieChecker = new Noise.CookieChecker(privateKey.PublicKey, _time);
        Span<byte> pub = stackalloc byte[32];
        privateKey.PublicKey.CopyTo(pub);
        Blake2s.Hash(Noise.NoiseConstants.InitialHash, pub, _initialHashForUs);
        _ownAddresses = _options.Addresses.Select(a => a.Address.GetAddressBytes()).ToArray();
        _policy = _options.Policy;
        _workers = new Worker[Math.Max(1, _options.Workers)];
        for (int i = 0; i < _workers.Length; i++) _workers[i] = new Worker(this, i);
        _handshakes = new HandshakeQueue(this, _options.HandshakeQueueSize);
        _staticStatic = new StaticStaticCache(this);
        _rateLimiter = new HandshakeRateLimiter(_time);
        _loadThreshold = Math.Max(0, _options.HandshakeLoadThreshold ?? _options.HandshakeQueueSize / 8);
    }

    public WgKey PublicKey => _privateKey.PublicKey;
    internal ReadOnlySpan<byte> PrivateKeySpan => _privateKey.Span;
    internal bool TryGetPeer(WgKey publicKey, out Peer peer) => _peers.TryGetValue(publicKey, out peer!);
    public int ListenPort => _bind.Port;
    public DeviceCounters Counters { get; } = new();
    /// <summary>Outgoing batches sealed on more than one core (<see cref="CryptoHelperPool"/>).</summary>
    public long ParallelSealBatches => _helpers.ParallelSealBatches;
    /// <summary>Runs of received packets opened on more than one core (<see cref="CryptoHelperPool"/>).</summary>
    public long ParallelOpenBatches => _helpers.ParallelOpenBatches;
    /// <summary>The threads helping to seal large batches and open long runs (0 before Start).</summary>
    internal int CryptoHelperThreads => _helpers.HelperThreads;
    /// <summary>The workers take runs of one keypair's packets from their queues and open them with the helpers.</summary>
    internal bool OpensInParallel => _helpers.HelperThreads > 0;
    public int PeerCount => _peers.Count;
    public Task Completion => _completion.Task;
    public bool IsRunning => _started == 1 && _stopped == 0;

    /// <summary>No packet queued or in progress on the crypto workers or the handshake queue (tests step a fake
    /// clock and wait for this, together with the binds, instead of sleeping).</summary>
    /// <summary>
    /// For an unstarted device driven on one thread (fuzzing, deterministic tests): processes, or with
    /// <paramref name="process"/> false discards, everything Dispatch queued, as the worker and handshake threads would.
    /// </summary>
    internal void DrainQueuesOnThisThread(bool process)
    {
        // With helpers (StartCryptoHelpers) the workers' own path, runs and all; without, one packet at a time.
        if (process && OpensInParallel)
            foreach (var w in _workers) while (w.TakeAndProcess()) { }
        foreach (var w in _workers)
            while (w.TryTakeQueued(out var buf)) { if (process) ProcessTransport(buf); }
        while (_handshakes.TryTakeQueued(out var buf)) { if (process) ProcessHandshakeMessage(buf); }
    }

    /// <summary>The peer with this key (fuzzing and tests reach its protocol state); throws when absent.</summary>
    internal Peer PeerOf(WgKey publicKey) => _peers[publicKey];

    /// <summary>The index table (fuzzing registers sessions it made itself).</summary>
    internal IndexTable Indices => _indices;

    internal bool QueuesIdle => _handshakes.IsIdle && Array.TrueForAll(_workers, w => w.IsIdle);

    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 1) return;
        StartCryptoHelpers();
        foreach (var w in _workers) w.Start();
        _handshakes.Start();
        _receiver = new Thread(ReceiveLoop) { IsBackground = true, Name = "wg-receive" };
        _receiver.Start();
        _timer = _time.CreateTimer(_ => SweepTimers(), null, _options.TimerTick, _options.TimerTick);
    }

    /// <summary>Starts the crypto helper threads (Start does; tests call it on an unstarted device to drive the
    /// parallel paths on their own thread). Once only.</summary>
    internal void StartCryptoHelpers()
    {
        if (Interlocked.Exchange(ref _helpersStarted, 1) == 0)
            _helpers = new CryptoHelperPool(_options.CryptoHelperThreads ?? CryptoHelperPool.DefaultHelperThreads());
    }
    private int _helpersStarted;

    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1) return;
        _timer?.Dispose();
        _stop.Cancel();
        _bind.Dispose();
        foreach (var w in _workers) w.Stop();
        _handshakes.Stop();
        _receiver?.Join(TimeSpan.FromSeconds(5));
        _helpers.Dispose();
        foreach (var p in _peers.Values) ZeroPeer(p);
        _completion.TrySetResult();
    }

    public void Dispose() => Stop();

    // ---- configuration -------------------------------------------------------------------------

    public void AddPeer(PeerConfig config)
    {
        lock (_configLock)
        {
            var peer = new Peer(config.PublicKey, _time, (int)((uint)Interlocked.Increment(ref _nextWorker) % (uint)_workers.Length), _indices);
            if (config.PublicKey == PublicKey)
                throw new WgException(WgErrorKind.InvalidArgument, "PeerIsSelf", "A peer cannot have the interface's own public key.");
            if (!_peers.TryAdd(config.PublicKey, peer))
                throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists", $"A peer with public key {config.PublicKey} already exists.");
            Apply(peer, config);
        }
    }

    public void UpdatePeer(PeerConfig config)
    {
        lock (_configLock)
        {
            if (!_peers.TryGetValue(config.PublicKey, out var peer))
                throw new WgException(WgErrorKind.NotFound, "PeerNotFound", $"No peer with public key {config.PublicKey}.");
            _allowedIps.RemoveAll(peer);
            Apply(peer, config);
        }
    }

    private void Apply(Peer peer, PeerConfig config)
    {
        peer.Name = config.Name;
        if (config.PresharedKey is { } psk) { psk.CopyTo(peer.PresharedKey); peer.HasPresharedKey = true; }
        else { Array.Clear(peer.PresharedKey); peer.HasPresharedKey = false; }
        peer.PersistentKeepaliveSeconds = config.PersistentKeepalive;
        if (config.Endpoint is not null) peer.Endpoint = _bind.ToSocketAddress(config.Endpoint);
        foreach (var prefix in config.AllowedIPs) _allowedIps.Insert(prefix, peer);
        ApplyPolicy(peer, config);
        ApplyLimits(peer, config);
        ApplyQuota(peer, config);
        // A persistent keepalive may now be due (the sweep drops the peer again if nothing is).
        if (peer.PersistentKeepaliveSeconds > 0 && peer.Endpoint is not null) MarkTimersDue(peer);
    }

    public bool RemovePeer(WgKey publicKey)
    {
        lock (_configLock)
        {
            if (!_peers.TryRemove(publicKey, out var peer)) return false;
            peer.Removed = true;
            _allowedIps.RemoveAll(peer);
            ForgetPolicy(peer);
            ZeroPeer(peer);
            return true;
        }
    }

    public PeerStatus? GetPeer(WgKey publicKey) => _peers.TryGetValue(publicKey, out var p) ? Status(p) : null;

    public IReadOnlyList<PeerStatus> GetPeers()
    {
        var list = new List<PeerStatus>(_peers.Count);
        foreach (var p in _peers.Values) list.Add(Status(p));
        return list;
    }

    private PeerStatus Status(Peer p)
    {
        long ms = p.Timers.LastHandshakeUnixMs;
        var ep = p.Endpoint;
        return new PeerStatus
        {
            PublicKey = p.PublicKey,
            Name = p.Name,
            AllowedIPs = _allowedIps.GetPrefixes(p),
            Endpoint = ep is null ? null : _bind.ToEndPoint(ep),
            LatestHandshake = ms == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(ms),
            ReceivedBytes = Volatile.Read(ref p.ReceivedBytes),
            SentBytes = Volatile.Read(ref p.SentBytes),
            PersistentKeepalive = p.PersistentKeepaliveSeconds,
            HasPresharedKey = p.HasPresharedKey,
            Acl = p.Acl?.Own ?? [],
            UploadLimit = p.Limits?.Upload?.Limit,
            DownloadLimit = p.Limits?.Download?.Limit,
            QuotaUsedBytes = QuotaUsed(p),
            Tags = p.Acl?.Tags ?? [],
        };
    }

    /// <summary>Test hook: sets the next send counter of the peer's current session.</summary>
    internal void SetNextSendCounter(WgKey publicKey, ulong next) => _peers[publicKey].Keypairs.Current!.SetNextSendCounter(next);

    /// <summary>True while any session or handshake state exists for the peer (diagnostics, tests).</summary>
    internal bool HasKeyMaterial(WgKey publicKey) =>
        _peers.TryGetValue(publicKey, out var p) && p.Session.HasKeys;

    /// <summary>Drops every session and handshake of a peer, erases their keys, and frees what waited.</summary>
    private void ZeroPeer(Peer peer)
    {
        peer.Session.EraseKeys();
        while (peer.TryTakeStaged(out var b)) { Interlocked.Decrement(ref peer.StagedCount); _pool.Return(b); }
    }

    /// <summary>Sends an IP packet into the tunnel, routed by destination through the allowed-IPs table
    /// (what a TUN device read would do). False when no peer owns the destination.</summary>
    public bool SendPacket(ReadOnlySpan<byte> ipPacket)
    {
        if (ipPacket.Length == 0 || ipPacket.Length > PacketBuffer.Capacity - 64) return false;
        var dst = IpHeader.Destination(ipPacket);
        if (dst.IsEmpty) return false;
        var peer = _allowedIps.Lookup(dst);
        if (peer is null) return false;
        var buf = _pool.Rent();
        ipPacket.CopyTo(buf.Data.AsSpan(MessageLayoutOffsets.Payload));
        buf.Length = ipPacket.Length;
        SendToPeer(peer, buf);
        return true;
    }

    private long Now => _time.GetTimestamp();
}

internal static class MessageLayoutOffsets
{
    /// <summary>Where an IP packet sits in a PacketBuffer: after the 16-byte transport header.</summary>
    public const int Payload = Noise.MessageLayout.TransportHeaderSize;
}
