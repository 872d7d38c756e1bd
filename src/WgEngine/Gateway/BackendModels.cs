using System.Net;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>Where decrypted packets that are neither for the gateway nor for another peer go.</summary>
public enum EgressMode { None, Userspace, Tun }

/// <summary>The interface (device) configuration a backend is started with.</summary>
public sealed class InterfaceConfig
{
    public required WgPrivateKey PrivateKey { get; init; }
    /// <summary>UDP port; 0 lets the OS pick one (the backend reports the real one).</summary>
    public int ListenPort { get; init; } = 51820;
    /// <summary>The gateway's own tunnel addresses (e.g. 10.8.0.1/24); it answers ICMP echo on them.</summary>
    public IReadOnlyList<IpPrefix> Addresses { get; init; } = [];
    public EgressMode Egress { get; init; } = EgressMode.Userspace;
    /// <summary>Limits and allow list of the userspace egress; null = defaults (with this config's TimeProvider).</summary>
    public EgressOptions? EgressOptions { get; init; }
    /// <summary>The server's name; with <see cref="EgressMode.Tun"/> also the TUN interface's (at most 15 bytes on Linux).</summary>
    public string? Name { get; init; }
    /// <summary>IP address to bind the UDP socket to; null = all addresses (IPv6 dual-stack where available).</summary>
    public IPAddress? BindAddress { get; init; }
    /// <summary>The tunnel MTU: packets are padded up to it (never beyond) and a TUN egress gets it.</summary>
    public int Mtu { get; init; } = DefaultMtu;
    /// <summary>wg-quick's default for IPv4 and IPv6 underlay (1500 - 80).</summary>
    public const int DefaultMtu = 1420;
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    /// <summary>Refuse peer-to-peer traffic unless a rule of the sender allows it (client isolation).</summary>
    public bool PeerIsolation { get; init; }
    /// <summary>Told (on a packet thread: return at once) when a peer has used up its quota.</summary>
    public Action<WgKey>? QuotaExhausted { get; init; }
    /// <summary>The ordered rules of each tag (peers carry tags).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<Policy.AclRule>>? TagRules { get; init; }
}

/// <summary>A peer as configured. AllowedIPs is final here (allocation happened in the facade).</summary>
public sealed record PeerConfig
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
