using System.Net;
using WgEngine.Contracts;
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

    private VPNServer(ServerOptions options, IWireGuardBackend backend, WgPrivateKey? ownedKey, IReadOnlyList<IpPrefix> addresses)
    {
        _backend = backend;
        _ownedKey = ownedKey;
        Capabilities = options.Capabilities;
        _privateKey = Capabilities.OwnsPrivateKey ? options.PrivateKey ?? ownedKey : null;
        _time = options.TimeProvider;
        Name = options.Name;
        Addresses = addresses;
        Egress = options.EffectiveEgress;
        StartedAt = options.TimeProvider.GetUtcNow();
        var own = addresses.Select(p => p.Address).ToList();
        foreach (var a in addresses) _index.Add(new IpPrefix(a.Address, a.MaxBits), Gateway);
        // One pool per family: the first prefix of that family that has room for clients.
        foreach (var ipv4 in new[] { true, false })
        {
            var p = addresses.FirstOrDefault(x => x.IsIPv4 == ipv4 && x.Bits < x.MaxBits);
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
        options.Validate();
        var caps = options.Capabilities;
        // With a config file: its key, port and addresses (see ServerOptions.ConfigPath for precedence).
        ConfigLoad? load = options.ConfigPath is null ? null : ConfigLoad.Read(options);
        var addresses = load?.Addresses ?? options.Addresses;
        int listenPort = load?.ListenPort ?? options.ListenPort;
        if (addresses.Count == 0)
        {
            load?.FileKey?.Dispose();
            throw new WgException(WgErrorKind.InvalidArgument, "NoAddress", "A server needs at least one tunnel address, e.g. 10.8.0.1/24.");
        }
        if (addresses.FirstOrDefault(a => !IsUsableOwnAddress(a)) is { Address: not null } bad)
        {
            load?.FileKey?.Dispose();
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidServerAddress",
                $"{bad} cannot be the gateway's own address: it needs a unicast host address and a prefix that is not /0 (e.g. 10.8.0.1/24, fd00:8::1/64).");
        }
        if (!caps.OwnsPrivateKey && options.BackendFactory is null)
        {
            // An external device: it keeps its own key, port and MTU unless they are given, and routes by itself.
            var external = BackendFactory.Create(options.Backend, options, null);
            var device = new VPNServer(options, external, null, addresses);
            device.StartUapi(options);
            return device;
        }

        if (options.Mtu is < 576 or > 65535)
        {
            load?.FileKey?.Dispose();
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidMtu", $"MTU {options.Mtu} is outside 576-65535.");
        }
        int mtu = options.Mtu ?? load?.Config?.Interface.Mtu ?? InterfaceConfig.DefaultMtu;
        if (load is not null && options.Mtu is { } given && load.Config?.Interface.Mtu != given) load.MustWrite = true;
        var owned = load?.FileKey ?? (options.PrivateKey is null ? WgPrivateKey.Generate() : null);
        var quotaTarget = new QuotaTarget();
        var config = new InterfaceConfig
        {
            QuotaExhausted = quotaTarget.Report,
            PrivateKey = options.PrivateKey ?? owned!,
            ListenPort = listenPort,
            Addresses = addresses,
            Egress = options.EffectiveEgress,
            EgressOptions = EgressOptionsWithFileRules(options, load),
            PeerIsolation = options.PeerIsolation ?? load?.PeerIsolation ?? false,
            TagRules = load?.TagRules,
            Name = options.Name,
            BindAddress = options.BindAddress,
            Mtu = mtu,
            TimeProvider = options.TimeProvider,
            Log = options.Log,
        };
        if (!caps.EnforcesPolicy && (config.PeerIsolation || config.TagRules is { Count: > 0 }))
        {
            owned?.Dispose();
            throw new WgException(WgErrorKind.InvalidOperation, "PolicyNotApplicable",
                $"Client isolation, tags and ACLs are enforced by the in-process engine only; -Backend {options.Backend} cannot apply them.");
        }
        IWireGuardBackend backend;
        try
        {
            backend = options.BackendFactory is { } f ? f(config) : BackendFactory.Create(options.Backend, options, config);
        }
        catch
        {
            owned?.Dispose();
            throw;
        }
        var server = new VPNServer(options, backend, owned, addresses) { BindAddress = options.BindAddress };
        quotaTarget.Server = server;
        server.InitPolicy(config);
        // Without a userspace egress the file's rules are not enforced, but kept when the file is rewritten.
        if ((backend as UserspaceBackend)?.Egress is null) server._egressRules = load?.EgressRules;
        try
        {
            server.Mtu = mtu;
            if (options.Mtu is not null) server._template.Mtu = mtu;   // written to the file (and Export-WgConfig)
            if (load is not null) server.InitPersistence(load);
            server.StartUapi(options);
        }
        catch
        {
            server.Dispose();
            throw;
        }
        return server;
    }

    /// <summary>The gateway's own address and pool: a unicast, specified address in a prefix that is not the
    /// whole address space (0.0.0.0/0 made 0.0.0.0 the gateway and handed out 0.0.0.1/32).</summary>
    private static bool IsUsableOwnAddress(IpPrefix p) =>
        p.Bits > 0 && !p.Address.Equals(IPAddress.Any) && !p.Address.Equals(IPAddress.IPv6Any)
        && !p.Address.Equals(IPAddress.Broadcast) && !p.Address.IsIPv6Multicast
        && !(p.IsIPv4 && p.Address.GetAddressBytes()[0] is >= 224 and <= 239);

    /// <summary>Things the operator should know about how the server started (e.g. a config file others can read).</summary>
    public IReadOnlyList<string> StartWarnings { get; private set; } = [];

    public string Name { get; }
    /// <summary>The tunnel MTU of the in-process engine; null for an external device (it has its own).</summary>
    public int? Mtu { get; private set; }
    /// <summary>The address the UDP socket is bound to; null = all addresses.</summary>
    public IPAddress? BindAddress { get; private init; }
    public WgKey PublicKey => _backend.PublicKey;
    public int ListenPort => _backend.ListenPort;
    public IReadOnlyList<IpPrefix> Addresses { get; }
    public string BackendKind => _backend.Kind;
    /// <summary>What this server's backend does (from its kind: <see cref="ServerOptions.Backend"/>).</summary>
    public BackendCapabilities Capabilities { get; }
    public EgressMode Egress { get; }
    public ServerState State => _backend.IsRunning ? ServerState.Running : ServerState.Stopped;
    public DateTimeOffset StartedAt { get; }
    public int PeerCount { get { lock (_lock) return _peers.Count; } }
    public long ReceivedBytes => _backend.GetStats().ReceivedBytes;
    public long SentBytes => _backend.GetStats().SentBytes;
    /// <summary>A snapshot of the engine's interface counters.</summary>
    public InterfaceStats Stats => _backend.GetStats();
    /// <summary>A snapshot of every counter the engine has (all drop reasons, egress, TUN, policy); a backend
    /// that reports only <see cref="InterfaceStats"/> gives those, its drops under "Unclassified".</summary>
    public ServerMetrics Metrics => _backend is IMetricsSource m ? m.GetMetrics() : FromStats(_backend.GetStats());

    private static ServerMetrics FromStats(InterfaceStats s) => new()
    {
        ReceivedBytes = s.ReceivedBytes, SentBytes = s.SentBytes, HandshakesCompleted = s.HandshakesCompleted, CookieRepliesSent = s.CookieRepliesSent,
        Drops = new Dictionary<string, long> { ["Unclassified"] = s.DroppedPackets },
    };
    /// <summary>The userspace egress's counters (flows, limits, refusals); null without one.</summary>
    public Egress.EgressCounters? EgressCounters => (_backend as UserspaceBackend)?.EgressCounters;
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
            EnsureChangeable();
            if (_peers.ContainsKey(spec.PublicKey))
                throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists",
                    $"A peer with public key {spec.PublicKey} already exists on server '{Name}'.");
            CheckPeerKey(spec.PublicKey);
            CheckName(spec.Name);
            // Only the in-process engine enforces the policy: refuse before anything is claimed.
            if (spec.Acl is { Count: > 0 } || spec.Tags is { Count: > 0 } || spec.UploadLimit is not null || spec.DownloadLimit is not null || spec.Quota is not null)
                EnsurePolicy();
            var entry = new PeerEntry(spec.PublicKey, spec.Name, []) { ExpiresAt = spec.ExpiresAt, EndpointText = spec.EndpointText };
            bool allocate = allocateWhenEmpty && (spec.AllowedIPs is null || spec.AllowedIPs.Count == 0);
            var allowed = allocate ? Allocate() : Normalize(spec.AllowedIPs ?? []);
            if (!allocate) CheckOverlaps(allowed, spec.PublicKey);
            entry.AllowedIPs = allowed;
            Claim(entry);
            var config = new PeerConfig
            {
                PublicKey = spec.PublicKey, AllowedIPs = allowed, Name = spec.Name, PresharedKey = spec.PresharedKey,
                Endpoint = spec.Endpoint, PersistentKeepalive = spec.PersistentKeepalive,
                Acl = spec.Acl ?? [], Tags = CheckTags(spec.Tags),
                UploadLimit = CheckLimit(spec.UploadLimit), DownloadLimit = CheckLimit(spec.DownloadLimit),
                Quota = CheckQuota(spec.Quota), QuotaUsedBytes = spec.QuotaUsedBytes,
            };
            InitQuota(entry, config.Quota, spec.QuotaPeriodStart, spec.QuotaUsedBytes);
            if (config.Quota is not null) config = config with { QuotaUsedBytes = entry.QuotaUsed };
            if (spec.Disabled) entry.DisabledReason = spec.DisabledReason ?? DisabledReasons.Manual;
            entry.Config = config;
            entry.Disabled = spec.Disabled || IsExpired(spec.ExpiresAt);
            if (entry.Disabled && !spec.Disabled) entry.DisabledReason = DisabledReasons.Expired;
            if (!entry.Disabled)
            {
                try { _backend.AddPeer(config); }
                catch { Unclaim(entry); throw; }
            }
            _peers.Add(spec.PublicKey, entry);
            if (entry.Disabled) _disabledCount++;
            ScheduleExpiry(entry);
            var status = StatusOf(entry);
            Raise(PeerEventKind.Created, status);
            Persist();
            return status;
        }
    }

    /// <summary>Changes a peer in place (its sessions survive). Throws WgException(NotFound) for an unknown key.</summary>
    public PeerStatus UpdatePeer(WgKey publicKey, PeerUpdate changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        lock (_lock)
        {
            EnsureChangeable();
            if (!_peers.TryGetValue(publicKey, out var entry))
                throw NotFound(publicKey);
            CheckName(changes.Name);
            if (changes.Acl is { Count: > 0 } || changes.Tags is { Count: > 0 } || changes.UploadLimit is { BitsPerSecond: > 0 }
                || changes.DownloadLimit is { BitsPerSecond: > 0 } || changes.Quota is { Bytes: > 0 })
                EnsurePolicy();
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
                Acl = changes.Acl ?? old.Acl,
                Tags = changes.Tags is null ? old.Tags : CheckTags(changes.Tags),
                UploadLimit = changes.UploadLimit is { } up ? (up.BitsPerSecond == 0 ? null : CheckLimit(up)) : old.UploadLimit,
                DownloadLimit = changes.DownloadLimit is { } down ? (down.BitsPerSecond == 0 ? null : CheckLimit(down)) : old.DownloadLimit,
                Quota = changes.Quota is { } q ? (q.Bytes == 0 ? null : CheckQuota(q)) : old.Quota,
                QuotaUsedBytes = CurrentQuotaUsed(entry),
            };
            if (changes.Quota is { Bytes: > 0 } && old.Quota is null) InitQuota(entry, config.Quota, null, config.QuotaUsedBytes);
            try { if (!entry.Disabled) _backend.UpdatePeer(config); }
            catch
            {
                if (changes.AllowedIPs is not null) { Unclaim(entry); entry.AllowedIPs = oldAllowed; Claim(entry); }
                throw;
            }
            entry.Config = config;
            entry.Name = config.Name;
            if (changes.Endpoint is not null) entry.EndpointText = changes.EndpointText;
            if (changes.ClearExpiresAt || changes.ExpiresAt is not null)
            {
                entry.ExpiresAt = changes.ClearExpiresAt ? null : changes.ExpiresAt;
                if (!entry.Disabled && IsExpired(entry.ExpiresAt)) { DisableCore(entry, DisabledReasons.Expired); Raise(PeerEventKind.Expired, StatusOf(entry)); }   // already past: now
                ScheduleExpiry(entry);
            }
            Persist();
            return StatusOf(entry);
        }
    }

    /// <summary>Removes a peer, drops its sessions and returns its addresses to the pool. False when unknown.</summary>
    public bool RemovePeer(WgKey publicKey)
    {
        lock (_lock)
        {
            if (_readOnly && _peers.ContainsKey(publicKey)) EnsureChangeable();
            if (!_peers.Remove(publicKey, out var entry)) return false;
            if (_events is not null) Raise(PeerEventKind.Removed, StatusOf(entry));
            if (entry.Disabled) _disabledCount--; else _backend.RemovePeer(publicKey);
            Unclaim(entry);
            Persist();
            return true;
        }
    }

    /// <summary>One peer (enabled or disabled), or null when unknown.</summary>
    public PeerStatus? GetPeerInfo(WgKey publicKey)
    {
        lock (_lock)
            return _peers.TryGetValue(publicKey, out var e) ? StatusOf(e) : WithFacadeData(_backend.GetPeer(publicKey), null);
    }

    /// <summary>Every peer: those in the engine with their live state, then the disabled ones.</summary>
    public IReadOnlyList<PeerStatus> GetPeers()
    {
        lock (_lock)
        {
            var list = _backend.GetPeers();
            var result = new List<PeerStatus>(list.Count + _disabledCount);
            foreach (var p in list)
                result.Add(WithFacadeData(p, _peers.GetValueOrDefault(p.PublicKey))!);
            if (_disabledCount > 0)
                foreach (var e in _peers.Values)
                    if (e.Disabled) result.Add(StatusOf(e));
            return result;
        }
    }

    /// <summary>The engine's live view plus what only the facade knows: names (an external device cannot
    /// store them), expiry. A disabled peer is not in the engine: its status comes from its config.</summary>
    private PeerStatus StatusOf(PeerEntry e) =>
        e.Disabled ? ToStatus(e.Config!) with { Enabled = false, ExpiresAt = e.ExpiresAt, DisabledReason = e.DisabledReason, QuotaUsedBytes = e.QuotaUsed, QuotaPeriodStart = e.QuotaPeriodStart }
            : WithFacadeData(_backend.GetPeer(e.Key), e) ?? ToStatus(e.Config!) with { ExpiresAt = e.ExpiresAt };

    private static PeerStatus? WithFacadeData(PeerStatus? p, PeerEntry? e)
    {
        if (p is null || e is null) return p;
        if (e.Config is { } c && (c.Acl.Count > 0 || c.Tags.Count > 0 || c.UploadLimit is not null || c.DownloadLimit is not null || c.Quota is not null))
            p = p with { Acl = c.Acl, Tags = c.Tags, UploadLimit = c.UploadLimit, DownloadLimit = c.DownloadLimit, Quota = c.Quota, QuotaPeriodStart = e.QuotaPeriodStart };
        return p.Name is null && e.Name is not null || e.ExpiresAt is not null
            ? p with { Name = p.Name ?? e.Name, ExpiresAt = e.ExpiresAt }
            : p;
    }

    /// <summary>A key no handshake can ever complete with is refused rather than kept as a dead peer.</summary>
    private void CheckPeerKey(WgKey key)
    {
        Span<byte> b = stackalloc byte[WgKey.Size];
        key.CopyTo(b);
        if (X25519.IsLowOrder(b))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidPeerPublicKey",
                $"Public key {key} is a Curve25519 point of small order (all zeros is one): the key exchange with it yields zero, so such a peer can never connect. Use the key `wg pubkey` or New-WgKey gives.");
        if (_backend.IsRunning && key == _backend.PublicKey)
            throw new WgException(WgErrorKind.InvalidArgument, "PeerIsGateway",
                $"Public key {key} is server '{Name}''s own key; a peer needs its own key pair.");
    }

    /// <summary>Longest peer name: enough for "firstname.lastname-laptop", short enough for the views.</summary>
    public const int MaxPeerNameLength = 64;

    private static void CheckName(string? name)
    {
        if (name is null) return;
        if (name.Length > MaxPeerNameLength)
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidPeerName", $"A peer name can have at most {MaxPeerNameLength} characters (this one has {name.Length}).");
        foreach (char c in name)
            if (char.IsControl(c))
                throw new WgException(WgErrorKind.InvalidArgument, "InvalidPeerName", "A peer name cannot contain control characters (line breaks, tabs).");
    }

    /// <summary>Stops the backend and frees the port. Idempotent.</summary>
    public void Stop()
    {
        lock (_lock)
        {
            StopUapi();
            StopExpiry();
            StopQuota();
            if (_backend.IsRunning && _configPath is not null && _peers.Values.Any(e => e.Config?.Quota is not null))
            {
                try { Persist(); }   // the quotas' usage, counted by the engine until now
                catch (WgException) { }
            }
            CompleteEvents();
            _configPath = null;   // the file keeps the state at Stop: the keys are erased below
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

    /// <summary>Every mutating call starts here: a stopped server, or one that runs from a read-only config,
    /// refuses the change before anything is changed.</summary>
    private void EnsureChangeable()
    {
        EnsureRunning();
        if (_readOnly)
            throw new WgException(WgErrorKind.InvalidOperation, "ConfigReadOnly",
                $"Server '{Name}' runs from the read-only config file '{_configPath}': changes are refused, nothing was changed. Edit the file and restart the server.");
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
        var result = new IpPrefix[_pools.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var pool = _pools[i];
            if (pool.TryAllocate(out var address, _isTaken ??= IsTaken))
            {
                result[i] = new IpPrefix(address, pool.IsIPv4 ? 32 : 128);
                continue;
            }
            for (int j = 0; j < i; j++) PoolOf(result[j])?.Release(result[j].Address);
            throw new WgException(WgErrorKind.LimitExceeded, "AddressPoolExhausted",
                $"No free address left in {pool.Prefix} on server '{Name}'; remove peers, give AllowedIPs explicitly, or use a larger -Address prefix.");
        }
        return result;
    }

    // One delegate for the server's lifetime (not a closure per allocation): a candidate address is
    // taken when any peer's range (or the gateway's own address) covers it.
    private Func<IPAddress, bool>? _isTaken;
    private bool IsTaken(IPAddress a) => _index.FindOverlap(new IpPrefix(a, AddressMath.IsV4(a) ? 32 : 128)) is not null;

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
        Acl = c.Acl, Tags = c.Tags, UploadLimit = c.UploadLimit, DownloadLimit = c.DownloadLimit, Quota = c.Quota,
    };

    /// <summary>The facade's record of a peer: what it holds in the index and pools.</summary>
    private sealed class PeerEntry(WgKey key, string? name, IReadOnlyList<IpPrefix> allowed)
    {
        public WgKey Key { get; } = key;
        public string? Name { get; set; } = name;
        public IReadOnlyList<IpPrefix> AllowedIPs { get; set; } = allowed;
        public PeerConfig? Config { get; set; }
        public bool Disabled { get; set; }
        public DateTimeOffset? ExpiresAt { get; set; }
        /// <summary>The endpoint as the config file wrote it (e.g. a hostname); null once changed.</summary>
        public string? EndpointText { get; set; }
        /// <summary>Why it is disabled (DisabledReasons); null while enabled.</summary>
        public string? DisabledReason { get; set; }
        /// <summary>Quota bytes used, as of when the peer left the engine (while in it, the engine counts).</summary>
        public long QuotaUsed { get; set; }
        public DateTimeOffset? QuotaPeriodStart { get; set; }

        public string Describe()
        {
            var shortKey = Key.ToBase64()[..8] + "...";
            return string.IsNullOrEmpty(Name) ? shortKey : $"'{Name}' ({shortKey})";
        }
    }
}
