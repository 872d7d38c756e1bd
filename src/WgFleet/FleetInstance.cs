using System.Net;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgFleet;

/// <summary>How an instance joins its fleet.</summary>
public sealed class FleetInstanceOptions
{
    /// <summary>The fleet's private key: its public key must be the fleet's (FleetKeyMismatch otherwise). The instance disposes it when it stops.</summary>
    public required WgPrivateKey PrivateKey { get; init; }
    /// <summary>The local server's name (UAPI socket, messages).</summary>
    public string Name { get; init; } = "wg0";
    /// <summary>Unique in the fleet; default host name, process id and a random suffix.</summary>
    public string? InstanceId { get; init; }
    /// <summary>The UDP port; null = the fleet's (several instances on one host need their own).</summary>
    public int? ListenPort { get; init; }
    public IPAddress? BindAddress { get; init; }
    public EgressMode Egress { get; init; } = EgressMode.Userspace;
    public EgressOptions? EgressOptions { get; init; }
    public string? UapiPath { get; init; }
    /// <summary>What the instance reports as its endpoint (e.g. its address behind the load balancer); informational.</summary>
    public string? AdvertisedEndpoint { get; init; }
    /// <summary>How often the fleet version is checked even without a notification (repairs a lost one).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>The shortest time between two syncs (from the start of one to the start of the next). A change after a
    /// quiet spell is applied at once; under a stream of notifications the instance syncs at most once per interval,
    /// each sync taking every change committed so far, so that N instances cost the database at most N / interval
    /// syncs per second whatever the write rate (docs/fleet.md). Zero: sync on every wake-up.</summary>
    public TimeSpan MinSyncInterval { get; init; } = TimeSpan.FromMilliseconds(50);
    /// <summary>How often the heartbeat and the live peer state are written.</summary>
    public TimeSpan ReportInterval { get; init; } = TimeSpan.FromSeconds(5);
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    /// <summary>The mesh's UDP port (the cross-instance hub, docs/fleet.md): null = no mesh unless <see cref="MeshEndpoint"/> is given; 0 = a free port.</summary>
    public int? MeshListenPort { get; init; }
    /// <summary>Where the other instances reach this one's mesh (address:port); null = the bind address and the mesh's port.
    /// Without <see cref="MeshListenPort"/> the mesh listens on this endpoint's port.</summary>
    public string? MeshEndpoint { get; init; }
}

/// <summary>
/// One instance of a fleet: a <see cref="VPNServer"/> (userspace backend) with the fleet's identity, kept equal to
/// the registry's peer list. A change committed anywhere arrives by LISTEN/NOTIFY and is applied at once; a
/// periodic version check repairs a missed notification. While the registry is unreachable the server keeps
/// serving what it last applied, and catches up by version when the registry is back. Every
/// <see cref="FleetInstanceOptions.ReportInterval"/> it writes its heartbeat and the live state of the peers
/// whose handshake or counters changed.
/// </summary>
public sealed class FleetInstance : IDisposable
{
    private readonly IFleetRegistry _registry;
    private readonly FleetInstanceOptions _options;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Dictionary<WgKey, FleetPeer> _applied = new();
    private readonly Dictionary<WgKey, (DateTimeOffset? Handshake, long Rx, long Tx, long QuotaUsed, long QuotaEpoch)> _reported = new();
    /// <summary>Per peer with a quota: what the other instances used of it in the current period and epoch, as last read.</summary>
    private readonly Dictionary<WgKey, long> _quotaOthers = new();
    private readonly object _versionLock = new();
    private readonly object _reportLock = new();   // the report loop, and a test driving a report itself
    private static readonly TimeSpan ListenRetry = TimeSpan.FromSeconds(1);
    private readonly List<(long Version, TaskCompletionSource Done)> _waiters = new();
    private Task _sync = Task.CompletedTask, _listen = Task.CompletedTask, _report = Task.CompletedTask;
    private long _version;
    /// <summary>The highest version a notification announced: when it is above <see cref="_version"/> the sync reads the changes without asking for the version first.</summary>
    private long _announced;
    private int _disposed;
    private FleetMesh? _mesh;

    private FleetInstance(IFleetRegistry registry, FleetInstanceOptions options, VPNServer server, FleetInfo fleet, string id)
    {
        _registry = registry;
        _options = options;
        _time = options.TimeProvider;
        Server = server;
        Fleet = fleet;
        InstanceId = id;
    }

    public VPNServer Server { get; }
    public FleetInfo Fleet { get; }
    public string InstanceId { get; }
    /// <summary>The fleet version this instance's peers are at.</summary>
    public long AppliedVersion => Interlocked.Read(ref _version);
    /// <summary>False after the last attempt to reach the registry failed (the instance serves its last known configuration).</summary>
    public bool RegistryReachable { get; private set; } = true;
    /// <summary>Registry peers the engine refused (e.g. a rule it cannot parse): skipped, counted, never fatal.</summary>
    public int RejectedPeers { get; private set; }
    /// <summary>Tag rules from the registry the engine refused: skipped, counted, never fatal.</summary>
    public int RejectedPolicies { get; private set; }
    /// <summary>The cross-instance hub's tunnel; null when this instance runs no mesh.</summary>
    public MeshTunnel? Mesh => _mesh?.Tunnel;

    /// <summary>Loads the fleet, starts the server with every peer, then keeps it in sync. The registry is the caller's.</summary>
    public static FleetInstance Start(IFleetRegistry registry, FleetInstanceOptions options)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(options);
        var fleet = registry.GetFleet();
        if (options.PrivateKey.PublicKey != fleet.PublicKey)
            throw new WgException(WgErrorKind.InvalidArgument, "FleetKeyMismatch",
                $"The private key given is not fleet '{fleet.Name}''s: its public key is {options.PrivateKey.PublicKey}, the fleet's {fleet.PublicKey}.");
        var changes = registry.GetChanges(0);
        var server = VPNServer.Start(new ServerOptions
        {
            Name = options.Name, PrivateKey = options.PrivateKey, Addresses = fleet.Addresses,
            ListenPort = options.ListenPort ?? fleet.ListenPort, BindAddress = options.BindAddress,
            Egress = options.Egress, EgressOptions = options.EgressOptions, UapiPath = options.UapiPath,
            TimeProvider = options.TimeProvider, Backend = BackendKind.Userspace,
        });
        string id = options.InstanceId ?? $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
        var instance = new FleetInstance(registry, options, server, fleet, id);
        try
        {
            if (options.MeshListenPort is not null || options.MeshEndpoint is not null)
                instance._mesh = FleetMesh.Start(server, id, options.MeshListenPort, options.MeshEndpoint, options.BindAddress, options.TimeProvider);
            instance.Apply(changes);
            instance.Report();
        }
        catch
        {
            instance._mesh?.Dispose();
            server.Dispose();
            throw;
        }
        instance._sync = Task.Run(instance.SyncLoopAsync);
        instance._listen = Task.Run(instance.ListenLoopAsync);
        instance._report = Task.Run(instance.ReportLoopAsync);
        return instance;
    }

    /// <summary>Completes once this instance has applied <paramref name="version"/> (or later); false on timeout.</summary>
    public async Task<bool> WaitForVersionAsync(long version, TimeSpan timeout)
    {
        TaskCompletionSource done;
        lock (_versionLock)
        {
            if (_version >= version) return true;
            done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((version, done));
        }
        _wake.Release();
        try
        {
            await done.Task.WaitAsync(timeout, _time).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException) { return false; }
    }

    /// <summary>Asks for a sync now (a change was just written through this process).</summary>
    public void Wake() => _wake.Release();

    private async Task ListenLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _registry.ListenAsync(v =>
                {
                    if (v <= AppliedVersion) return;
                    long seen;
                    while (v > (seen = Interlocked.Read(ref _announced)) && Interlocked.CompareExchange(ref _announced, v, seen) != seen) { }
                    _wake.Release();
                }, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (WgException) { RegistryReachable = false; }
            // Reconnected (or not): a sync catches up whatever was committed while not listening. Listening again
            // soon (a second, or the poll interval if shorter): with a long poll interval a failed connection must
            // not leave the instance deaf to notifications for that long.
            _wake.Release();
            try { await Task.Delay(TimeSpan.FromTicks(Math.Min(_options.PollInterval.Ticks, ListenRetry.Ticks)), _time, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
        }
    }

    private async Task SyncLoopAsync()
    {
        var ct = _stop.Token;
        long lastSync = _time.GetTimestamp();
        while (!ct.IsCancellationRequested)
        {
            // A notification, a local write or the poll interval (on the injected clock), whichever comes first.
            using (var poll = new CancellationTokenSource(_options.PollInterval, _time))
            using (var either = CancellationTokenSource.CreateLinkedTokenSource(poll.Token, ct))
            {
                try { await _wake.WaitAsync(either.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
                catch (OperationCanceledException) { return; }
            }
            // The debounce: not sooner than MinSyncInterval after the last sync started (notifications meanwhile coalesce).
            var wait = _options.MinSyncInterval - _time.GetElapsedTime(lastSync);
            if (wait > TimeSpan.Zero)
            {
                try { await Task.Delay(wait, _time, ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
            while (_wake.CurrentCount > 0 && _wake.Wait(0)) { }   // one sync serves every wake-up so far
            lastSync = _time.GetTimestamp();
            try { SyncOnce(); }
            catch (WgException) { RegistryReachable = false; }
        }
    }

    /// <summary>Reads the changes since the applied version and applies them. RegistryUnavailable leaves everything as it was.</summary>
    internal void SyncOnce()
    {
        // Announced by a notification: the changes at once (one snapshot, one round trip and its commit); else (the
        // poll) the version first, the cheaper question when, as usually, nothing changed.
        long applied = AppliedVersion;
        bool behind = Interlocked.Read(ref _announced) > applied || _registry.GetVersion() > applied;
        RegistryReachable = true;
        if (behind) Apply(_registry.GetChanges(applied));
    }

    /// <summary>Under the lock of <see cref="_applied"/>, which the report reads too (the mesh's routes).</summary>
    private void Apply(FleetChanges changes)
    {
        lock (_applied) ApplyLocked(changes);
    }

    private void ApplyLocked(FleetChanges changes)
    {
        if (changes.Policy is { } policy) ApplyPolicy(policy);
        foreach (var key in changes.Removed)
        {
            _applied.Remove(key);
            Server.RemovePeer(key);
        }
        // A peer's old ranges may be a later peer's new ones: clear every moving peer's ranges first.
        foreach (var p in changes.Changed)
            if (_applied.TryGetValue(p.PublicKey, out var old) && !old.AllowedIPs.SequenceEqual(p.AllowedIPs))
                Server.UpdatePeer(p.PublicKey, new PeerUpdate { AllowedIPs = [] });
        var added = new List<PeerSpec>();
        var addedRows = new List<FleetPeer>();
        foreach (var p in changes.Changed)
        {
            try
            {
                if (_applied.TryGetValue(p.PublicKey, out var old) && Server.GetPeerInfo(p.PublicKey) is not null)
                {
                    Server.UpdatePeer(p.PublicKey, Difference(old, p));
                    if (old.Enabled != p.Enabled) { if (p.Enabled) Server.EnablePeer(p.PublicKey); else Server.DisablePeer(p.PublicKey); }
                    ApplyQuota(old, p);
                    _applied[p.PublicKey] = p;
                }
                else { added.Add(ToSpec(p)); addedRows.Add(p); }
            }
            catch (WgException) { RejectedPeers++; }
        }
        if (added.Count > 0)
        {
            var results = Server.AddPeers(added, allocateWhenEmpty: false);
            for (int i = 0; i < results.Count; i++)
            {
                if (results[i].Error is null) _applied[addedRows[i].PublicKey] = addedRows[i];
                else RejectedPeers++;
            }
        }
        lock (_versionLock)
        {
            Interlocked.Exchange(ref _version, Math.Max(_version, changes.Version));
            for (int i = _waiters.Count - 1; i >= 0; i--)
                if (_waiters[i].Version <= _version) { _waiters[i].Done.TrySetResult(); _waiters.RemoveAt(i); }
        }
    }

    /// <summary>The fleet's isolation and tag rules on the local server: only what differs (a tag gone from the registry loses its rules).</summary>
    private void ApplyPolicy(FleetPolicy policy)
    {
        if (Server.PeerIsolation != policy.PeerIsolation) Server.SetPeerIsolation(policy.PeerIsolation);
        var current = Server.TagRules;
        foreach (var (tag, texts) in policy.TagRules)
        {
            try
            {
                var rules = texts.SelectMany(WgEngine.Policy.AclRule.Parse).ToArray();
                if (!current.TryGetValue(tag, out var now) || !now.SequenceEqual(rules)) Server.SetTagRules(tag, rules);
            }
            catch (Exception e) when (e is WgException or FormatException) { RejectedPolicies++; }
        }
        foreach (var tag in current.Keys)
            if (!policy.TagRules.ContainsKey(tag)) Server.SetTagRules(tag, []);
    }

    /// <summary>
    /// A fleet quota on this instance: the engine counts this instance's bytes against what the others have not used
    /// (the quota minus their usage in the current period and epoch, at least 1 byte), so the engine disables the peer
    /// (QuotaExceeded) once the fleet as a whole has used it up. The others' usage is read after each report.
    /// </summary>
    private WgEngine.Policy.DataQuota? LocalQuota(FleetPeer p) => p.Quota is { } q
        ? new WgEngine.Policy.DataQuota(Math.Max(1, q.Bytes - _quotaOthers.GetValueOrDefault(p.PublicKey)), q.Period) : null;

    private void ApplyQuota(FleetPeer old, FleetPeer p)
    {
        var key = p.PublicKey;
        if (p.Quota is null)
        {
            if (old.Quota is not null) Server.UpdatePeer(key, new PeerUpdate { Quota = new WgEngine.Policy.DataQuota(0) });
            _quotaOthers.Remove(key);
            return;
        }
        if (old.Quota is not null && old.QuotaEpoch != p.QuotaEpoch)
        {
            // Started afresh over the fleet (Enable-WgPeer): the others' counts of the old epoch no longer count, and this
            // instance's own count starts at zero too (enabling a used-up peer does that; removing and giving the quota again otherwise).
            _quotaOthers.Remove(key);
            var now = Server.GetPeerInfo(key);
            if (now is { Enabled: false, DisabledReason: "QuotaExceeded" }) Server.EnablePeer(key);
            else
            {
                Server.UpdatePeer(key, new PeerUpdate { Quota = new WgEngine.Policy.DataQuota(0) });
                Server.UpdatePeer(key, new PeerUpdate { Quota = LocalQuota(p) });
            }
            return;
        }
        if (old.Quota != p.Quota) Server.UpdatePeer(key, new PeerUpdate { Quota = LocalQuota(p) });
    }

    /// <summary>After a report: every quota peer's engine quota set to what the other instances left of it.</summary>
    private void EnforceQuotas()
    {
        List<FleetPeer> limited;
        lock (_applied) limited = _applied.Values.Where(p => p.Quota is not null).ToList();
        if (limited.Count == 0) return;
        var usage = _registry.GetQuotaUsage();
        var now = _time.GetUtcNow();
        lock (_applied)
        {
            foreach (var p in limited)
            {
                if (!_applied.TryGetValue(p.PublicKey, out var current) || current.Quota is null) continue;
                _quotaOthers[p.PublicKey] = QuotaUsage.Sum(usage, current, now, except: InstanceId);
                var local = LocalQuota(current);
                try { if (Server.GetPeerInfo(p.PublicKey) is { } s && s.Quota != local) Server.UpdatePeer(p.PublicKey, new PeerUpdate { Quota = local }); }
                catch (WgException) { RejectedPeers++; }
            }
        }
    }

    private PeerSpec ToSpec(FleetPeer p) => new()
    {
        PublicKey = p.PublicKey, AllowedIPs = p.AllowedIPs, Name = p.Name, PresharedKey = p.PresharedKey,
        Endpoint = ParseEndpoint(p.Endpoint), PersistentKeepalive = p.PersistentKeepalive, Disabled = !p.Enabled,
        ExpiresAt = p.ExpiresAt, Tags = p.Tags, Acl = p.Acl.SelectMany(WgEngine.Policy.AclRule.Parse).ToArray(),
        UploadLimit = p.UploadLimit, DownloadLimit = p.DownloadLimit, Quota = LocalQuota(p),
    };

    /// <summary>Only what changed: an unchanged endpoint is not re-set (that would undo the peer's roaming).</summary>
    private static PeerUpdate Difference(FleetPeer old, FleetPeer p) => new()
    {
        AllowedIPs = old.AllowedIPs.SequenceEqual(p.AllowedIPs) ? null : p.AllowedIPs,
        Name = p.Name != old.Name ? p.Name ?? "" : null,
        PresharedKey = p.PresharedKey != old.PresharedKey ? p.PresharedKey : null,
        ClearPresharedKey = old.PresharedKey is not null && p.PresharedKey is null,
        Endpoint = p.Endpoint != old.Endpoint ? ParseEndpoint(p.Endpoint) : null,
        PersistentKeepalive = p.PersistentKeepalive != old.PersistentKeepalive ? p.PersistentKeepalive : null,
        ExpiresAt = p.ExpiresAt != old.ExpiresAt ? p.ExpiresAt : null,
        ClearExpiresAt = old.ExpiresAt is not null && p.ExpiresAt is null,
        Tags = p.Tags.SequenceEqual(old.Tags) ? null : p.Tags,
        Acl = p.Acl.SequenceEqual(old.Acl) ? null : p.Acl.SelectMany(WgEngine.Policy.AclRule.Parse).ToArray(),
        // A rate of 0 removes a limit.
        UploadLimit = p.UploadLimit == old.UploadLimit ? null : p.UploadLimit ?? new WgEngine.Policy.RateLimit(0),
        DownloadLimit = p.DownloadLimit == old.DownloadLimit ? null : p.DownloadLimit ?? new WgEngine.Policy.RateLimit(0),
    };

    private static IPEndPoint? ParseEndpoint(string? text) => IPEndPoint.TryParse(text ?? "", out var e) && e.Port != 0 ? e : null;

    private async Task ReportLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(_options.ReportInterval, _time, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            try { Report(); }
            catch (WgException) { RegistryReachable = false; }
        }
    }

    /// <summary>The heartbeat and the peers whose live state changed since the last report that got through; then,
    /// with a mesh, its peers from the instances and live state just read.</summary>
    internal void Report()
    {
        lock (_reportLock) ReportLocked();
    }

    private void ReportLocked()
    {
        var changed = new List<PeerLive>();
        var now = new List<(WgKey, (DateTimeOffset?, long, long, long, long))>();
        Dictionary<WgKey, long> epochs;
        lock (_applied) epochs = _applied.Values.Where(a => a.Quota is not null).ToDictionary(a => a.PublicKey, a => a.QuotaEpoch);
        foreach (var s in Server.GetPeers())
        {
            var p = s;
            // A quota peer's usage: what this instance's engine counted in its current period, under the epoch it applied.
            bool quota = epochs.TryGetValue(p.PublicKey, out long epoch) && p.QuotaPeriodStart is not null;
            _reported.TryGetValue(p.PublicKey, out var last);
            bool known = _reported.ContainsKey(p.PublicKey);
            // A disabled peer is out of the engine (no handshake, no counters): its last reported ones stand, only its quota count moves.
            if (!p.Enabled && known) p = p with { LatestHandshake = last.Handshake, ReceivedBytes = last.Rx, SentBytes = last.Tx };
            if (p.LatestHandshake is null && p.ReceivedBytes == 0 && !(quota && p.QuotaUsedBytes > 0)) continue;
            var state = (p.LatestHandshake, p.ReceivedBytes, p.SentBytes, quota ? p.QuotaUsedBytes : 0, quota ? epoch : 0);
            if (known && last == state) continue;
            changed.Add(new PeerLive(p.PublicKey, p.Endpoint?.ToString(), p.LatestHandshake, p.ReceivedBytes, p.SentBytes,
                quota ? p.QuotaPeriodStart : null, quota ? p.QuotaUsedBytes : 0, quota ? epoch : 0));
            now.Add((p.PublicKey, state));
        }
        var stats = Server.Stats;
        _registry.ReportInstance(new InstanceReport(InstanceId, _options.AdvertisedEndpoint, Server.PeerCount, stats.ReceivedBytes, stats.SentBytes, changed,
            _mesh?.NodeKey, _mesh?.Endpoint));
        foreach (var (key, state) in now) _reported[key] = state;
        EnforceQuotas();
        if (_mesh is not null)
        {
            Dictionary<WgKey, FleetPeer> peers;
            lock (_applied) peers = new Dictionary<WgKey, FleetPeer>(_applied);
            _mesh.Refresh(_registry.GetInstances(), _registry.GetLiveState(), peers, _time.GetUtcNow(), 3 * _options.ReportInterval);
        }
    }

    /// <summary>Stops syncing and the server; tells the registry this instance is gone (best effort).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        try { Task.WaitAll([_sync, _listen, _report], TimeSpan.FromSeconds(10)); }
        catch (AggregateException) { }
        try { _registry.RemoveInstance(InstanceId); }
        catch (WgException) { }
        _mesh?.Dispose();
        Server.Dispose();
        _options.PrivateKey.Dispose();
        _stop.Dispose();
    }
}
