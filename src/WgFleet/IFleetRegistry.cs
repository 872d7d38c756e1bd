using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgFleet;

/// <summary>
/// The shared state of one fleet (docs/fleet.md): its identity, its peers with a fleet-wide version, address
/// allocations, the instances serving it and their live peer state. Every write is one transaction, checked
/// (no overlapping AllowedIPs, pool allocation) by the store itself, so that any number of instances and
/// management sessions may write at once. Failures are <see cref="WgException"/>s with stable ErrorIds;
/// the store being unreachable is always <c>RegistryUnavailable</c> with nothing changed. PostgreSQL is the
/// implementation built and tested (<see cref="Postgres.PostgresFleetRegistry"/>); another store could follow.
/// </summary>
public interface IFleetRegistry : IDisposable
{
    /// <summary>The fleet this registry object is bound to.</summary>
    string Fleet { get; }

    /// <summary>Creates the fleet; FleetExists when it is there already.</summary>
    FleetInfo CreateFleet(FleetDefinition definition);

    /// <summary>The fleet; FleetNotFound when there is none, FleetSecretMismatch when this registry's secret is not the fleet's.</summary>
    FleetInfo GetFleet();

    /// <summary>The fleet-wide version: it grows with every peer change.</summary>
    long GetVersion();

    /// <summary>Peers changed and removed after <paramref name="sinceVersion"/> (0: every peer), and the version they bring the reader to.</summary>
    FleetChanges GetChanges(long sinceVersion);

    /// <summary>Adds a peer; null or empty AllowedIPs allocate one address from each of the fleet's prefixes.</summary>
    FleetPeer AddPeer(PeerSpec spec);

    FleetPeer UpdatePeer(WgKey publicKey, PeerUpdate changes);

    /// <summary>False when the key is unknown.</summary>
    bool RemovePeer(WgKey publicKey);

    /// <summary>False when the peer already was in that state; PeerNotFound when unknown.</summary>
    bool SetEnabled(WgKey publicKey, bool enabled);

    /// <summary>Starts a peer's quota afresh over the fleet (Enable-WgPeer of a peer that used it up): a new quota epoch;
    /// usage reported for earlier epochs no longer counts. PeerNotFound when unknown.</summary>
    void ResetQuota(WgKey publicKey);

    /// <summary>What each instance reported of the quota usage of peers with a quota.</summary>
    IReadOnlyList<QuotaUsage> GetQuotaUsage();

    /// <summary>The fleet's traffic policy (client isolation, tag rules).</summary>
    FleetPolicy GetPolicy();

    /// <summary>Turns the fleet's client isolation on or off; returns the fleet version of the change.</summary>
    long SetPeerIsolation(bool on);

    /// <summary>Sets a tag's ordered rules (AclRule text; empty removes them); returns the fleet version of the change.</summary>
    long SetTagRules(string tag, IReadOnlyList<string> rules);

    /// <summary>An instance's heartbeat with its load and the live state of the peers that changed since its last report.</summary>
    void ReportInstance(InstanceReport report);

    /// <summary>Marks an instance as gone (a clean stop); its last live state stays for the byte totals.</summary>
    void RemoveInstance(string instanceId);

    IReadOnlyList<InstanceInfo> GetInstances();

    /// <summary>Per peer: the latest live state over every instance, bytes summed over instances.</summary>
    IReadOnlyDictionary<WgKey, FleetPeerLive> GetLiveState();

    /// <summary>Calls <paramref name="notified"/> with the fleet's new version whenever a change is committed
    /// anywhere, until cancelled; throws RegistryUnavailable when the connection breaks.</summary>
    Task ListenAsync(Action<long> notified, CancellationToken cancellation);
}

/// <summary>What a new fleet is: its gateway identity (the public key only), port and addresses (also the pool).</summary>
public sealed record FleetDefinition(WgKey PublicKey, int ListenPort, IReadOnlyList<IpPrefix> Addresses);

public sealed record FleetInfo(string Name, WgKey PublicKey, int ListenPort, IReadOnlyList<IpPrefix> Addresses, long Version, DateTimeOffset CreatedAt);

/// <summary>A peer as the registry holds it; the preshared key decrypted with the fleet secret.</summary>
public sealed record FleetPeer
{
    public required WgKey PublicKey { get; init; }
    public string? Name { get; init; }
    public IReadOnlyList<IpPrefix> AllowedIPs { get; init; } = [];
    public string? Endpoint { get; init; }
    public int PersistentKeepalive { get; init; }
    public bool Enabled { get; init; } = true;
    public DateTimeOffset? ExpiresAt { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public IReadOnlyList<string> Acl { get; init; } = [];
    public WgKey? PresharedKey { get; init; }
    /// <summary>Bandwidth of what the peer sends; null = unlimited. Each instance enforces it on the session it holds.</summary>
    public WgEngine.Policy.RateLimit? UploadLimit { get; init; }
    /// <summary>Bandwidth of what the peer receives; null = unlimited.</summary>
    public WgEngine.Policy.RateLimit? DownloadLimit { get; init; }
    /// <summary>The data quota over every instance; null = none.</summary>
    public WgEngine.Policy.DataQuota? Quota { get; init; }
    /// <summary>Grows each time the quota is started afresh; instances report usage per epoch.</summary>
    public long QuotaEpoch { get; init; }
    /// <summary>The fleet version of this row's last change.</summary>
    public long RowVersion { get; init; }
}

/// <summary>The changes after a version; <paramref name="Policy"/> is the fleet's policy when it changed after that version (always when reading from 0), else null.</summary>
public sealed record FleetChanges(long Version, IReadOnlyList<FleetPeer> Changed, IReadOnlyList<WgKey> Removed, FleetPolicy? Policy = null);

/// <summary>A fleet's traffic policy, as every instance applies it: client isolation and the rules of each tag (AclRule text, in order).</summary>
public sealed record FleetPolicy(bool PeerIsolation, IReadOnlyDictionary<string, IReadOnlyList<string>> TagRules);

/// <summary>One instance's live view of one peer: cumulative counters since that instance started, and (for a peer with
/// a quota) the bytes this instance counted in the quota period that starts at <paramref name="QuotaPeriodStart"/> and epoch <paramref name="QuotaEpoch"/>.</summary>
public readonly record struct PeerLive(WgKey PublicKey, string? Endpoint, DateTimeOffset? LatestHandshake, long ReceivedBytes, long SentBytes,
    DateTimeOffset? QuotaPeriodStart = null, long QuotaUsed = 0, long QuotaEpoch = 0);

/// <summary>One instance's count of a peer's quota usage: in the period starting at <paramref name="PeriodStart"/>, in quota epoch <paramref name="Epoch"/>.</summary>
public readonly record struct QuotaUsage(WgKey PublicKey, string Instance, DateTimeOffset PeriodStart, long Used, long Epoch)
{
    /// <summary>A peer's usage over the fleet: the counts of every instance (but <paramref name="except"/>) for the peer's current period and epoch.</summary>
    public static long Sum(IEnumerable<QuotaUsage> rows, FleetPeer peer, DateTimeOffset now, string? except = null) =>
        peer.Quota is not { } q ? 0
            : rows.Where(u => u.PublicKey == peer.PublicKey && u.Instance != except && u.Epoch == peer.QuotaEpoch && u.PeriodStart == q.PeriodStart(now)).Sum(u => u.Used);
}

/// <summary>A heartbeat; <paramref name="NodeKey"/> and <paramref name="MeshEndpoint"/> (host:port) when the instance runs a mesh (the cross-instance hub).</summary>
public sealed record InstanceReport(string InstanceId, string? Endpoint, int PeerCount, long ReceivedBytes, long SentBytes, IReadOnlyList<PeerLive> Peers,
    WgKey? NodeKey = null, string? MeshEndpoint = null);

public sealed record InstanceInfo(string Id, string? Endpoint, DateTimeOffset StartedAt, DateTimeOffset Heartbeat, int PeerCount, long ReceivedBytes, long SentBytes, bool Stopped,
    WgKey? NodeKey = null, string? MeshEndpoint = null);

/// <summary>A peer over the whole fleet: the instance with the latest handshake holds its session.</summary>
public sealed record FleetPeerLive(string? Instance, string? Endpoint, DateTimeOffset? LatestHandshake, long ReceivedBytes, long SentBytes);
