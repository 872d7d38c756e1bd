using System.Net;
using WgEngine.Config;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgFleet;

/// <summary>
/// A fleet as the front ends (cmdlets) see a gateway: peer changes go to the registry, in its transactions and
/// with its checks, and peers are read from it with their live state summed over the instances. With a local
/// <see cref="FleetInstance"/> (Start-WgServer -Registry) a write also waits (briefly) until that instance has
/// applied it, and the interface figures are the instance's; without one (Connect-WgServer -Registry) they are
/// the fleet's totals. The fleet's identity (port, key) is not changed here: NotSupportedInFleet, nothing changed.
/// </summary>
public sealed class FleetGateway : IGatewayServer, IDisposable
{
    private static readonly TimeSpan ApplyWait = TimeSpan.FromSeconds(5);
    private readonly IFleetRegistry _registry;
    private readonly FleetInstance? _instance;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private FleetInfo _fleet;
    private IReadOnlyDictionary<WgKey, FleetPeerLive> _live = new Dictionary<WgKey, FleetPeerLive>();
    private IReadOnlyList<QuotaUsage> _quotaUsage = [];

    /// <summary>Takes ownership of the registry and of the instance (when given).</summary>
    public FleetGateway(IFleetRegistry registry, FleetInstance? instance, string? name = null)
    {
        _registry = registry;
        _instance = instance;
        _fleet = instance?.Fleet ?? registry.GetFleet();
        Name = name ?? instance?.Server.Name ?? registry.Fleet;
    }

    public string Fleet => _registry.Fleet;
    /// <summary>The local instance's id; null in a management-only session.</summary>
    public string? InstanceId => _instance?.InstanceId;
    public FleetInstance? Instance => _instance;

    /// <summary>The instance holding the peer's current session, as of the last peer listing (Get-WgPeer).</summary>
    public string? SessionInstance(WgKey key) => _live.TryGetValue(key, out var l) ? l.Instance : null;

    public IReadOnlyList<InstanceInfo> GetInstances() => _registry.GetInstances();

    public string Name { get; }
    public WgKey PublicKey => _fleet.PublicKey;
    public int ListenPort => _instance?.Server.ListenPort ?? _fleet.ListenPort;
    public IReadOnlyList<IpPrefix> Addresses => _fleet.Addresses;
    public string BackendKind => _instance is null ? "Fleet" : "Fleet/" + _instance.Server.BackendKind;
    public EgressMode Egress => _instance?.Server.Egress ?? EgressMode.None;
    public ServerState State => _instance?.Server.State ?? (_closed.Task.IsCompleted ? ServerState.Stopped : ServerState.Running);
    public DateTimeOffset StartedAt => _instance?.Server.StartedAt ?? _fleet.CreatedAt;
    public int PeerCount => _instance?.Server.PeerCount ?? _registry.GetChanges(0).Changed.Count;
    public long ReceivedBytes => Stats.ReceivedBytes;
    public long SentBytes => Stats.SentBytes;
    public InterfaceStats Stats
    {
        get
        {
            if (_instance is not null) return _instance.Server.Stats;
            var all = _registry.GetInstances();
            return new InterfaceStats(all.Sum(i => i.ReceivedBytes), all.Sum(i => i.SentBytes), 0);
        }
    }
    public EgressCounters? EgressCounters => _instance?.Server.EgressCounters;
    public ServerMetrics? Metrics => _instance?.Server.Metrics;
    public string? ConfigPath => null;
    public string? UapiPath => _instance?.Server.UapiPath;
    public IPAddress? BindAddress => _instance?.Server.BindAddress;
    public int? Mtu => _instance?.Server.Mtu;
    public bool ConfigReadOnly => false;
    public EgressRules EgressRules => _instance?.Server.EgressRules ?? EgressRules.Default;
    /// <summary>The fleet's: the local instance's (which applies the registry's) or, without one, the registry's.</summary>
    public bool PeerIsolation => _instance?.Server.PeerIsolation ?? _registry.GetPolicy().PeerIsolation;
    public IReadOnlyDictionary<string, IReadOnlyList<WgEngine.Policy.AclRule>> TagRules =>
        _instance?.Server.TagRules ?? _registry.GetPolicy().TagRules.ToDictionary(t => t.Key, t => (IReadOnlyList<WgEngine.Policy.AclRule>)t.Value.SelectMany(WgEngine.Policy.AclRule.Parse).ToArray(), StringComparer.OrdinalIgnoreCase);
    public Task Completion => _instance?.Server.Completion ?? _closed.Task;

    public PeerStatus AddPeer(PeerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var peer = _registry.AddPeer(spec);
        AwaitApplied(peer.RowVersion);
        return ToStatus(peer);
    }

    public IReadOnlyList<PeerBatchResult> AddPeers(IReadOnlyList<PeerSpec> specs, bool allocateWhenEmpty = true)
    {
        ArgumentNullException.ThrowIfNull(specs);
        var results = new PeerBatchResult[specs.Count];
        for (int i = 0; i < specs.Count; i++)
        {
            try
            {
                if (!allocateWhenEmpty && specs[i].AllowedIPs is not { Count: > 0 })
                    throw new WgException(WgErrorKind.InvalidArgument, "NoAllowedIPs", $"Peer {specs[i].PublicKey} has no AllowedIPs and allocation was not asked for.");
                results[i] = new PeerBatchResult(AddPeer(specs[i]), null);
            }
            catch (WgException e) when (e.ErrorId != "RegistryUnavailable") { results[i] = new PeerBatchResult(null, e); }
        }
        return results;
    }

    public PeerStatus UpdatePeer(WgKey publicKey, PeerUpdate changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var peer = _registry.UpdatePeer(publicKey, changes);
        AwaitApplied(peer.RowVersion);
        return ToStatus(peer);
    }

    public bool RemovePeer(WgKey publicKey)
    {
        bool removed = _registry.RemovePeer(publicKey);
        if (removed) AwaitLatest();
        return removed;
    }

    public IReadOnlyList<bool> RemovePeers(IReadOnlyList<WgKey> publicKeys) => publicKeys.Select(RemovePeer).ToArray();

    public IReadOnlyList<PeerBatchResult> UpdatePeers(IReadOnlyList<(WgKey PublicKey, PeerUpdate Changes)> updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        var results = new PeerBatchResult[updates.Count];
        for (int i = 0; i < updates.Count; i++)
        {
            try { results[i] = new PeerBatchResult(UpdatePeer(updates[i].PublicKey, updates[i].Changes), null); }
            catch (WgException e) when (e.ErrorId != "RegistryUnavailable") { results[i] = new PeerBatchResult(null, e); }
        }
        return results;
    }

    public PeerStatus? GetPeerInfo(WgKey publicKey) => GetPeers().FirstOrDefault(p => p.PublicKey == publicKey);

    public IReadOnlyList<PeerStatus> GetPeers() => ReadPeers().Select(p => p.Status).ToArray();

    /// <summary>Every peer's row and its status over the fleet (live state and quota usage read once), in version order.</summary>
    private (FleetPeer Row, PeerStatus Status)[] ReadPeers(FleetChanges? all = null)
    {
        var peers = (all ?? _registry.GetChanges(0)).Changed;
        _live = _registry.GetLiveState();
        _quotaUsage = peers.Any(p => p.Quota is not null) ? _registry.GetQuotaUsage() : [];
        return peers.OrderBy(p => p.RowVersion).Select(p => (p, ToStatus(p))).ToArray();
    }

    public bool DisablePeer(WgKey publicKey) => SetEnabled(publicKey, false);
    /// <summary>A peer that used up its quota over the fleet is enabled with its quota started afresh (a new quota epoch), as on one server.</summary>
    public bool EnablePeer(WgKey publicKey)
    {
        if (GetPeerInfo(publicKey) is { Enabled: false, DisabledReason: QuotaExceeded })
        {
            _registry.ResetQuota(publicKey);
            AwaitLatest();
            return true;
        }
        return SetEnabled(publicKey, true);
    }

    private const string QuotaExceeded = "QuotaExceeded";

    private bool SetEnabled(WgKey key, bool enabled)
    {
        bool changed = _registry.SetEnabled(key, enabled);
        if (changed) AwaitLatest();
        return changed;
    }

    public void SetListenPort(int port) => throw NotInFleet("the listen port (it is the fleet's: every instance has the same)");
    public void SetPeerIsolation(bool on) => AwaitApplied(_registry.SetPeerIsolation(on));
    public void SetEgressRules(EgressRules rules) => throw NotInFleet("egress rules (give them to each instance's Start-WgServer)");
    public void SetTagRules(string tag, IReadOnlyList<WgEngine.Policy.AclRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        AwaitApplied(_registry.SetTagRules(tag, rules.Select(r => r.ToString()).ToArray()));
    }
    public void SetPrivateKey(WgPrivateKey key) => throw NotInFleet("the private key (it is the fleet's identity)");

    /// <summary>The fleet as one wg-quick file (<see cref="FleetExport"/>); the private key only from a session that runs an instance.</summary>
    public string ExportConfigText(WgConfigFormat format, bool includePrivateKey, bool includePresharedKeys = false)
    {
        var all = _registry.GetChanges(0);   // from version 0 it carries the policy too
        string? key = includePrivateKey && _instance is not null ? _instance.Server.ExportConfig(includePrivateKey: true).Interface.PrivateKey : null;
        var config = FleetExport.Build(_registry.GetFleet(), all.Policy ?? _registry.GetPolicy(), ReadPeers(all), key);
        return WgConfigWriter.Write(config, format, includePrivateKey && key is not null, includePresharedKeys);
    }

    /// <summary>Stops the local instance (the fleet and its other instances go on); refused in a management-only session.</summary>
    public void Stop()
    {
        if (_instance is null)
            throw new WgException(WgErrorKind.InvalidOperation, "FleetNotStoppable",
                $"Fleet '{Fleet}' is served by its instances; this session runs none. Stop an instance where it runs (Stop-WgServer there, or SIGTERM).");
        Dispose();
    }

    private void AwaitApplied(long version)
    {
        if (_instance is null) return;
        _instance.Wake();
        // Bounded: the registry has the change; the instance applies it on its next sync at the latest.
        _instance.WaitForVersionAsync(version, ApplyWait).GetAwaiter().GetResult();
    }

    /// <summary>After a committed write that returns no version: the latest one (the write stands even if this read fails).</summary>
    private void AwaitLatest()
    {
        if (_instance is null) return;
        try { AwaitApplied(_registry.GetVersion()); }
        catch (WgException) { }
    }

    private PeerStatus ToStatus(FleetPeer p)
    {
        _live.TryGetValue(p.PublicKey, out var live);
        var now = DateTimeOffset.UtcNow;
        long used = QuotaUsage.Sum(_quotaUsage, p, now);
        // Used up over the fleet: each instance's engine refuses it (its share of the quota is spent).
        bool exceeded = p.Enabled && p.Quota is { } q && used >= q.Bytes;
        return new PeerStatus
        {
            PublicKey = p.PublicKey,
            Name = p.Name,
            AllowedIPs = p.AllowedIPs,
            Endpoint = live?.Endpoint is { } e && IPEndPoint.TryParse(e, out var ep) ? ep : IPEndPoint.TryParse(p.Endpoint ?? "", out var configured) && configured.Port != 0 ? configured : null,
            LatestHandshake = live?.LatestHandshake,
            ReceivedBytes = live?.ReceivedBytes ?? 0,
            SentBytes = live?.SentBytes ?? 0,
            PersistentKeepalive = p.PersistentKeepalive,
            HasPresharedKey = p.PresharedKey is not null,
            Enabled = p.Enabled && !exceeded,
            ExpiresAt = p.ExpiresAt,
            Tags = p.Tags,
            Acl = p.Acl.SelectMany(WgEngine.Policy.AclRule.Parse).ToArray(),
            DisabledReason = !p.Enabled ? "Manual" : exceeded ? QuotaExceeded : null,
            Quota = p.Quota,
            QuotaUsedBytes = used,
            QuotaPeriodStart = p.Quota?.PeriodStart(now),
            UploadLimit = p.UploadLimit,
            DownloadLimit = p.DownloadLimit,
        };
    }

    private WgException NotInFleet(string what) => new(WgErrorKind.InvalidOperation, "NotSupportedInFleet",
        $"Fleet '{Fleet}' does not change {what} through the registry yet; nothing was changed.");

    public void Dispose()
    {
        _instance?.Dispose();
        _registry.Dispose();
        _closed.TrySetResult();
    }
}
