using System.Net;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>
/// One WireGuard gateway: owns the policy (unique keys, no overlapping AllowedIPs, the address pool)
/// and drives an <see cref="IWireGuardBackend"/> for everything else. Thread-safe (one lock).
/// </summary>
public sealed partial class VPNServer : IDisposable
{
    private readonly object _lock = new();
    private readonly IWireGuardBackend _backend;
    private readonly WgPrivateKey? _ownedKey;
    private WgPrivateKey? _privateKey;   // null for an external device (its key stays there)
    private readonly Dictionary<WgKey, PeerEntry> _peers = new();
    private readonly AllowedIpIndex<PeerEntry> _index = new();
    private readonly List<AddressPool> _pools = new();
    private static readonly PeerEntry Gateway = new(default, "the gateway's own address", []);

    private VPNServer(ServerOptions options, IWireGuardBackend backend, WgPrivateKey? ownedKey)
    {
        _backend = backend;
        _ownedKey = ownedKey;
        _privateKey = backend is IUapiClientBackend ? null : options.PrivateKey ?? ownedKey;
        Name = options.Name;
        Addresses = options.Addresses;
        Egress = options.Egress;
        StartedAt = options.TimeProvider.GetUtcNow();
        var own = options.Addresses.Select(p => p.Address).ToList();
        foreach (var a in options.Addresses) _index.Add(new IpPrefix(a.Address, a.MaxBits), Gateway);
        // One pool per family: the first prefix of that family that has room for clients.
        foreach (var ipv4 in new[] { true, false })
        {
            var p = options.Addresses.FirstOrDefault(x => x.IsIPv4 == ipv4 && x.Bits < x.MaxBits);
            if (p.Address is not null) _pools.Add(new AddressPool(p, own));
        }
        if (backend is IPeerImport import) Adopt(import.ExportPeers());
    }

    /// <summary>Takes over the peers an external device already has, so that policy and Get-WgPeer see them.</summary>
    private void Adopt(IReadOnlyList<PeerConfig> existing)
    {
        foreach (var config in existing)
        {
            var entry = new PeerEntry(config.PublicKey, null, Normalize(config.AllowedIPs)) { Config = config };
            Claim(entry);
            _peers[config.PublicKey] = entry;
        }
    }

    /// <summary>Validates the options, builds the backend (which binds the port) and returns the running server.</summary>
    public static VPNServer Start(ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Name))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidServerName", "A server needs a non-empty name.");
        bool isExternal = string.Equals(options.Backend, "Uapi", StringComparison.OrdinalIgnoreCase);
        if (options.ListenPort is < 0 or > 65535 && !(isExternal && options.ListenPort == ServerOptions.KeepDevicePort))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidListenPort", $"ListenPort {options.ListenPort} is outside 0-65535.");
        if (options.Addresses.Count == 0)
            throw new WgException(WgErrorKind.InvalidArgument, "NoAddress", "A server needs at least one tunnel address, e.g. 10.8.0.1/24.");
        if (options.Egress == EgressMode.Userspace || (isExternal && options.Egress != EgressMode.None))
            throw new WgException(WgErrorKind.InvalidOperation, "EgressNotAvailable",
                $"Egress '{options.Egress}' is not available yet in this version; use Egress None (peers reach the gateway and each other).");
        if (options.BackendFactory is null && !isExternal && !string.Equals(options.Backend, "Userspace", StringComparison.OrdinalIgnoreCase))
            throw new WgException(WgErrorKind.InvalidOperation, "BackendNotAvailable",
                $"Backend '{options.Backend}' is not available; use 'Userspace' or 'Uapi'.");
        if (options.BackendFactory is null && isExternal)
        {
            if (string.IsNullOrEmpty(options.UapiPath))
                throw new WgException(WgErrorKind.InvalidArgument, "UapiPathRequired", "Backend 'Uapi' needs the device's UAPI socket (-UapiPath).");
            // The external device keeps its own key and port unless they are given.
            var external = new Uapi.UapiBackend(options.UapiPath, options.PrivateKey,
                options.ListenPort == ServerOptions.KeepDevicePort ? null : options.ListenPort);
            return new VPNServer(options, external, null) { _uapiPath = options.UapiPath };
        }

        var owned = options.PrivateKey is null ? WgPrivateKey.Generate() : null;
        var config = new InterfaceConfig
        {
            PrivateKey = options.PrivateKey ?? owned!,
            ListenPort = options.ListenPort,
            Addresses = options.Addresses,
            Egress = options.Egress,
            Name = options.Name,
            BindAddress = options.BindAddress,
            TimeProvider = options.TimeProvider,
        };
        IWireGuardBackend backend;
        try
        {
            backend = options.BackendFactory is { } f ? f(config) : new UserspaceBackend(config);
        }
        catch
        {
            owned?.Dispose();
            throw;
        }
        var server = new VPNServer(options, backend, owned);
        try
        {
            server.StartUapi(options);
        }
        catch
        {
            server.Dispose();
            throw;
        }
        return server;
    }

    public string Name { get; }
    public WgKey PublicKey => _backend.PublicKey;
    public int ListenPort => _backend.ListenPort;
    public IReadOnlyList<IpPrefix> Addresses { get; }
    public string BackendKind => _backend.Kind;
    public EgressMode Egress { get; }
    public ServerState State => _backend.IsRunning ? ServerState.Running : ServerState.Stopped;
    public DateTimeOffset StartedAt { get; }
    public int PeerCount { get { lock (_lock) return _peers.Count; } }
    public long ReceivedBytes => _backend.GetStats().ReceivedBytes;
    public long SentBytes => _backend.GetStats().SentBytes;
    /// <summary>A snapshot of the engine's interface counters.</summary>
    public InterfaceStats Stats => _backend.GetStats();
    public Task Completion => _backend.Completion;

    /// <summary>Adds a peer; allocates one pool address per family when AllowedIPs is null or empty.</summary>
    public PeerStatus AddPeer(PeerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return AddPeerCore(spec, allocateWhenEmpty: true);
    }

    private PeerStatus AddPeerCore(PeerSpec spec, bool allocateWhenEmpty)
    {
        lock (_lock)
        {
            EnsureRunning();
            if (_peers.ContainsKey(spec.PublicKey))
                throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists",
                    $"A peer with public key {spec.PublicKey} already exists on server '{Name}'.");
            var entry = new PeerEntry(spec.PublicKey, spec.Name, []);
            bool allocate = allocateWhenEmpty && (spec.AllowedIPs is null || spec.AllowedIPs.Count == 0);
            var allowed = allocate ? Allocate() : Normalize(spec.AllowedIPs ?? []);
            if (!allocate) CheckOverlaps(allowed, spec.PublicKey);
            entry.AllowedIPs = allowed;
            Claim(entry);
            var config = new PeerConfig
            {
                PublicKey = spec.PublicKey, AllowedIPs = allowed, Name = spec.Name, PresharedKey = spec.PresharedKey,
                Endpoint = spec.Endpoint, PersistentKeepalive = spec.PersistentKeepalive,
            };
            try { _backend.AddPeer(config); }
            catch { Unclaim(entry); throw; }
            entry.Config = config;
            _peers.Add(spec.PublicKey, entry);
            return WithName(_backend.GetPeer(spec.PublicKey)) ?? ToStatus(config);
        }
    }

    /// <summary>Changes a peer in place (its sessions survive). Throws WgException(NotFound) for an unknown key.</summary>
    public PeerStatus UpdatePeer(WgKey publicKey, PeerUpdate changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        lock (_lock)
        {
            EnsureRunning();
            if (!_peers.TryGetValue(publicKey, out var entry))
                throw NotFound(publicKey);
            var old = entry.Config!;
            var oldAllowed = entry.AllowedIPs;
            IReadOnlyList<IpPrefix> allowed = oldAllowed;
            if (changes.AllowedIPs is not null)
            {
                allowed = Normalize(changes.AllowedIPs);
                Unclaim(entry);                  // its own old ranges must not count as overlaps
                try { CheckOverlaps(allowed, publicKey); }
                catch { Claim(entry); throw; }
                entry.AllowedIPs = allowed;
                Claim(entry);
            }
            var config = old with
            {
                AllowedIPs = allowed,
                Name = changes.Name ?? old.Name,
                PresharedKey = changes.ClearPresharedKey ? null : changes.PresharedKey ?? old.PresharedKey,
                Endpoint = changes.Endpoint ?? old.Endpoint,
                PersistentKeepalive = changes.PersistentKeepalive ?? old.PersistentKeepalive,
            };
            try { _backend.UpdatePeer(config); }
            catch
            {
                if (changes.AllowedIPs is not null) { Unclaim(entry); entry.AllowedIPs = oldAllowed; Claim(entry); }
                throw;
            }
            entry.Config = config;
            entry.Name = config.Name;
            return WithName(_backend.GetPeer(publicKey)) ?? ToStatus(config);
        }
    }

    /// <summary>Removes a peer, drops its sessions and returns its addresses to the pool. False when unknown.</summary>
    public bool RemovePeer(WgKey publicKey)
    {
        lock (_lock)
        {
            if (!_peers.Remove(publicKey, out var entry)) return false;
            _backend.RemovePeer(publicKey);
            Unclaim(entry);
            return true;
        }
    }

    public PeerStatus? GetPeerInfo(WgKey publicKey) => WithName(_backend.GetPeer(publicKey));

    public IReadOnlyList<PeerStatus> GetPeers()
    {
        var list = _backend.GetPeers();
        var named = new List<PeerStatus>(list.Count);
        foreach (var p in list) named.Add(WithName(p)!);
        return named;
    }

    /// <summary>Backends that cannot store names (an external device) report null: the facade knows them.</summary>
    private PeerStatus? WithName(PeerStatus? p)
    {
        if (p is null || p.Name is not null) return p;
        lock (_lock) return _peers.TryGetValue(p.PublicKey, out var e) && e.Name is not null ? p with { Name = e.Name } : p;
    }

    /// <summary>Stops the backend and frees the port. Idempotent.</summary>
    public void Stop()
    {
        lock (_lock)
        {
            StopUapi();
            _backend.Stop();
            _ownedKey?.Dispose();
            DisposeUapiKeys();
        }
    }

    public void Dispose()
    {
        Stop();
        _backend.Dispose();
    }

    private void EnsureRunning()
    {
        if (!_backend.IsRunning)
            throw new WgException(WgErrorKind.InvalidOperation, "ServerStopped", $"Server '{Name}' is stopped.");
    }

    private IReadOnlyList<IpPrefix> Allocate()
    {
        if (_pools.Count == 0)
            throw new WgException(WgErrorKind.InvalidArgument, "NoAddressPool",
                $"Server '{Name}' has no address prefix to allocate from; give the peer AllowedIPs explicitly.");
        var result = new List<IpPrefix>(_pools.Count);
        foreach (var pool in _pools)
        {
            if (pool.TryAllocate(out var address, a => _index.FindOverlap(new IpPrefix(a, pool.IsIPv4 ? 32 : 128)) is not null))
            {
                result.Add(new IpPrefix(address, pool.IsIPv4 ? 32 : 128));
                continue;
            }
            foreach (var taken in result) PoolOf(taken)?.Release(taken.Address);
            throw new WgException(WgErrorKind.LimitExceeded, "AddressPoolExhausted",
                $"No free address left in {pool.Prefix} on server '{Name}'; remove peers, give AllowedIPs explicitly, or use a larger -Address prefix.");
        }
        return result;
    }

    private void CheckOverlaps(IReadOnlyList<IpPrefix> allowed, WgKey self)
    {
        foreach (var p in allowed)
        {
            var other = _index.FindOverlap(p);
            if (other is null || (other != Gateway && other.Key == self)) continue;
            string who = other == Gateway ? "the gateway's own address" : $"peer {other.Describe()}";
            throw new WgException(WgErrorKind.InvalidArgument, "AllowedIPsOverlap",
                $"AllowedIPs {p} overlaps {who} on server '{Name}'.");
        }
    }

    /// <summary>Records the entry's ranges in the overlap index and marks host addresses used in the pools.</summary>
    private void Claim(PeerEntry entry)
    {
        foreach (var p in entry.AllowedIPs)
        {
            _index.Add(p, entry);
            if (p.Bits == p.MaxBits) PoolOf(p)?.MarkUsed(p.Address);
        }
    }

    private void Unclaim(PeerEntry entry)
    {
        foreach (var p in entry.AllowedIPs)
        {
            _index.Remove(p, entry);
            var pool = PoolOf(p);
            if (pool is null) continue;
            if (p.Bits == p.MaxBits) pool.Release(p.Address); else pool.ReleaseRange(p);
        }
    }

    private AddressPool? PoolOf(IpPrefix p)
    {
        foreach (var pool in _pools)
            if (pool.IsIPv4 == p.IsIPv4 && pool.Prefix.Overlaps(p)) return pool;
        return null;
    }

    private static IReadOnlyList<IpPrefix> Normalize(IReadOnlyList<IpPrefix> list)
    {
        var result = new List<IpPrefix>(list.Count);
        foreach (var p in list)
        {
            var n = p.Network;
            if (!result.Contains(n)) result.Add(n);
        }
        return result;
    }

    private WgException NotFound(WgKey key) =>
        new(WgErrorKind.NotFound, "PeerNotFound", $"No peer with public key {key} on server '{Name}'.");

    private static PeerStatus ToStatus(PeerConfig c) => new()
    {
        PublicKey = c.PublicKey, Name = c.Name, AllowedIPs = c.AllowedIPs, Endpoint = c.Endpoint,
        PersistentKeepalive = c.PersistentKeepalive, HasPresharedKey = c.PresharedKey is not null,
    };

    /// <summary>The facade's record of a peer: what it holds in the index and pools.</summary>
    private sealed class PeerEntry(WgKey key, string? name, IReadOnlyList<IpPrefix> allowed)
    {
        public WgKey Key { get; } = key;
        public string? Name { get; set; } = name;
        public IReadOnlyList<IpPrefix> AllowedIPs { get; set; } = allowed;
        public PeerConfig? Config { get; set; }

        public string Describe()
        {
            var shortKey = Key.ToBase64()[..8] + "...";
            return string.IsNullOrEmpty(Name) ? shortKey : $"'{Name}' ({shortKey})";
        }
    }
}
