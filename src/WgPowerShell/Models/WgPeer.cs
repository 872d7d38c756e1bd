using System.Net;
using WgEngine.Contracts;
using WgEngine.Gateway;

namespace WgPowerShell.Models;

/// <summary>A snapshot of one peer, as Get-WgPeer / Add-WgPeer output it.</summary>
public sealed class WgPeer
{
    public required string Server { get; init; }
    public string? Name { get; init; }
    public required string PublicKey { get; init; }
    public string[] AllowedIPs { get; init; } = [];
    /// <summary>"ip:port" ("[v6]:port"), or null before the peer has been heard from / configured.</summary>
    public string? Endpoint { get; init; }
    public DateTimeOffset? LatestHandshake { get; init; }
    public long ReceivedBytes { get; init; }
    public long SentBytes { get; init; }
    public int PersistentKeepalive { get; init; }
    public bool HasPresharedKey { get; init; }
    /// <summary>False while disabled (Disable-WgPeer or expiry): kept, but no traffic and no handshake.</summary>
    public bool Enabled { get; init; } = true;
    /// <summary>When the peer is (or was) disabled automatically; null = never.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
    /// <summary>The peer's tags; their rules apply after its own.</summary>
    public string[] Tag { get; init; } = [];
    /// <summary>The peer's own ordered access rules (text form).</summary>
    public string[] Acl { get; init; } = [];
    /// <summary>Bandwidth limit of what the peer sends, in Mbit/s; null = unlimited.</summary>
    public double? UploadLimitMbps { get; init; }
    /// <summary>Bandwidth limit of what the peer receives, in Mbit/s; null = unlimited.</summary>
    public double? DownloadLimitMbps { get; init; }
    /// <summary>The data quota in bytes; null = none.</summary>
    public long? QuotaBytes { get; init; }
    /// <summary>Total, Day, Week or Month; null without a quota.</summary>
    public string? QuotaPeriod { get; init; }
    /// <summary>Bytes of the quota used in the current period.</summary>
    public long QuotaUsedBytes { get; init; }
    /// <summary>Why the peer is disabled: Manual, Expired or QuotaExceeded; null while enabled.</summary>
    public string? DisabledReason { get; init; }

    /// <summary>In a fleet: the instance holding the peer's current WireGuard session (the latest handshake); null otherwise.</summary>
    public string? Instance { get; init; }

    internal static WgPeer From(string server, PeerStatus p, string? instance = null) => new()
    {
        Server = server,
        Instance = instance,
        Name = p.Name,
        PublicKey = p.PublicKey.ToBase64(),
        AllowedIPs = Format(p.AllowedIPs),
        Endpoint = FormatEndpoint(p.Endpoint),
        LatestHandshake = p.LatestHandshake,
        ReceivedBytes = p.ReceivedBytes,
        SentBytes = p.SentBytes,
        PersistentKeepalive = p.PersistentKeepalive,
        HasPresharedKey = p.HasPresharedKey,
        Enabled = p.Enabled,
        ExpiresAt = p.ExpiresAt,
        Tag = p.Tags.Count == 0 ? [] : [.. p.Tags],
        Acl = p.Acl.Count == 0 ? [] : FormatRules(p.Acl),
        UploadLimitMbps = p.UploadLimit is { } up ? up.BitsPerSecond / 1e6 : null,
        DownloadLimitMbps = p.DownloadLimit is { } down ? down.BitsPerSecond / 1e6 : null,
        QuotaBytes = p.Quota?.Bytes,
        QuotaPeriod = p.Quota?.Period.ToString(),
        QuotaUsedBytes = p.QuotaUsedBytes,
        DisabledReason = p.Enabled ? null : p.DisabledReason,
    };

    private static string[] FormatRules(IReadOnlyList<WgEngine.Policy.AclRule> rules)
    {
        var result = new string[rules.Count];
        for (int i = 0; i < result.Length; i++) result[i] = rules[i].ToString();
        return result;
    }

    // Runs once per peer for Get-WgPeer over 100,000 peers: a plain loop, no LINQ.
    private static string[] Format(IReadOnlyList<WgEngine.Net.IpPrefix> list)
    {
        if (list.Count == 0) return [];
        var result = new string[list.Count];
        for (int i = 0; i < result.Length; i++) result[i] = list[i].ToString();
        return result;
    }

    private static string? FormatEndpoint(IPEndPoint? e)
    {
        if (e is null) return null;
        var a = e.Address.IsIPv4MappedToIPv6 ? e.Address.MapToIPv4() : e.Address;
        return new IPEndPoint(a, e.Port).ToString();   // IPv6 comes out as [addr]:port
    }

    public override string ToString() => PublicKey;
}
