using System.Net;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Contracts;

/// <summary>A peer as configured. AllowedIPs is final here (allocation happened in the facade).</summary>
internal sealed record PeerConfig
{
    public required WgKey PublicKey { get; init; }
    public IReadOnlyList<IpPrefix> AllowedIPs { get; init; } = [];
    public string? Name { get; init; }
    /// <summary>Null when none (the protocol then uses 32 zero bytes).</summary>
    public WgKey? PresharedKey { get; init; }
    public IPEndPoint? Endpoint { get; init; }
    /// <summary>Seconds, 0 = off.</summary>
    public int PersistentKeepalive { get; init; }
    /// <summary>The peer's own ordered access rules (before those of its tags).</summary>
    public IReadOnlyList<Policy.AclRule> Acl { get; init; } = [];
    /// <summary>Groups whose rules apply to the peer after its own, in this order.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>Bandwidth of what the peer sends (its upload); null = unlimited.</summary>
    public Policy.RateLimit? UploadLimit { get; init; }
    /// <summary>Bandwidth of what the peer receives (its download); null = unlimited.</summary>
    public Policy.RateLimit? DownloadLimit { get; init; }
    /// <summary>The data quota; null = none. The device counts down from <see cref="Policy.DataQuota.Bytes"/> minus <see cref="QuotaUsedBytes"/>.</summary>
    public Policy.DataQuota? Quota { get; init; }
    /// <summary>Bytes of the quota already used in the current period when this config is applied.</summary>
    public long QuotaUsedBytes { get; init; }
}

/// <summary>A peer as it is now: configuration plus live state.</summary>
public sealed record PeerStatus
{
    public required WgKey PublicKey { get; init; }
    public string? Name { get; init; }
    public IReadOnlyList<IpPrefix> AllowedIPs { get; init; } = [];
    public IPEndPoint? Endpoint { get; init; }
    public DateTimeOffset? LatestHandshake { get; init; }
    public long ReceivedBytes { get; init; }
    public long SentBytes { get; init; }
    public int PersistentKeepalive { get; init; }
    public bool HasPresharedKey { get; init; }
    /// <summary>False for a disabled peer: kept in the list and the config, but unknown to the engine.</summary>
    public bool Enabled { get; init; } = true;
    /// <summary>When the peer is (or was) disabled automatically; null = never.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
    public IReadOnlyList<Policy.AclRule> Acl { get; init; } = [];
    public IReadOnlyList<string> Tags { get; init; } = [];
    public Policy.RateLimit? UploadLimit { get; init; }
    public Policy.RateLimit? DownloadLimit { get; init; }
    public Policy.DataQuota? Quota { get; init; }
    /// <summary>Bytes of the quota used in the current period.</summary>
    public long QuotaUsedBytes { get; init; }
    public DateTimeOffset? QuotaPeriodStart { get; init; }
    /// <summary>Why the peer is disabled (Manual, Expired, QuotaExceeded); null while enabled.</summary>
    public string? DisabledReason { get; init; }
}

/// <summary>
/// Interface-wide counters. The handshake ones show the DoS protection at work: cookie replies sent
/// instead of Diffie-Hellman under load, and handshakes refused by the per-source rate limit.
/// </summary>
public readonly record struct InterfaceStats(long ReceivedBytes, long SentBytes, long DroppedPackets,
    long HandshakesCompleted = 0, long CookieRepliesSent = 0, long RateLimitedHandshakes = 0, long InvalidHandshakes = 0);
