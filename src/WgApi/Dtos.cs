using System.Text.Json;
using System.Text.Json.Serialization;

namespace WgApi;

// The management API v1's bodies (docs/api.md). Keys are base64 text as everywhere in the module;
// no DTO that the API returns has a field for a private or preshared key, except ClientDto.Config (the
// one-time client file).

/// <summary>A gateway as Get-WgServer shows it.</summary>
public sealed record ServerDto
{
    public required string Name { get; init; }
    public required string PublicKey { get; init; }
    public int ListenPort { get; init; }
    public string[] Address { get; init; } = [];
    public string Backend { get; init; } = "";
    public string Egress { get; init; } = "";
    public int PeerCount { get; init; }
    public string State { get; init; } = "";
    public DateTimeOffset StartedAt { get; init; }
    public long ReceivedBytes { get; init; }
    public long SentBytes { get; init; }
    public string? ConfigPath { get; init; }
    public string? UapiPath { get; init; }
    public string? BindAddress { get; init; }
    public int? Mtu { get; init; }
    public bool ConfigReadOnly { get; init; }
    public bool PeerIsolation { get; init; }
    public string[] EgressAllow { get; init; } = [];
    public string[] EgressDeny { get; init; } = [];
    public bool EgressUnprotected { get; init; }
    /// <summary>Each tag's ordered rules, as Set-WgTag takes them ("allow 10.0.0.0/8 tcp 443").</summary>
    public Dictionary<string, string[]> TagRules { get; init; } = [];
}

/// <summary>PATCH /v1/servers/{name}: null leaves a field as it is. The key is input only (never returned).</summary>
public sealed record ServerUpdateDto
{
    public int? ListenPort { get; init; }
    public string? PrivateKey { get; init; }
}

/// <summary>A peer as Get-WgPeer shows it.</summary>
public sealed record PeerDto
{
    public required string PublicKey { get; init; }
    public string? Name { get; init; }
    public string[] AllowedIPs { get; init; } = [];
    public string? Endpoint { get; init; }
    public DateTimeOffset? LatestHandshake { get; init; }
    public long ReceivedBytes { get; init; }
    public long SentBytes { get; init; }
    public int PersistentKeepalive { get; init; }
    public bool HasPresharedKey { get; init; }
    public bool Enabled { get; init; } = true;
    public DateTimeOffset? ExpiresAt { get; init; }
    public string[] Tags { get; init; } = [];
    public string[] Acl { get; init; } = [];
    public string? DisabledReason { get; init; }
}

/// <summary>POST /v1/servers/{name}/peers: empty or missing AllowedIPs allocates from the pool.</summary>
public sealed record PeerCreateDto
{
    public required string PublicKey { get; init; }
    public string[]? AllowedIPs { get; init; }
    public string? Name { get; init; }
    public string? PresharedKey { get; init; }
    public string? Endpoint { get; init; }
    public int PersistentKeepalive { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public bool Disabled { get; init; }
}

/// <summary>POST /v1/servers/{name}/peers/batch: many peers, one config write (as Add-WgPeer's pipeline).</summary>
public sealed record PeerBatchDto
{
    public required PeerCreateDto[] Peers { get; init; }
    /// <summary>False takes empty AllowedIPs as given (an import) instead of allocating.</summary>
    public bool Allocate { get; init; } = true;
}

/// <summary>One item of a batch: the peer, or the error that item got.</summary>
public sealed record PeerBatchItemDto
{
    public PeerDto? Peer { get; init; }
    public ErrorDto? Error { get; init; }
}

/// <summary>PATCH /v1/servers/{name}/peers/{key}: null leaves a field as it is; [] clears AllowedIPs.</summary>
public sealed record PeerUpdateDto
{
    public string[]? AllowedIPs { get; init; }
    public string? Name { get; init; }
    public string? PresharedKey { get; init; }
    public bool ClearPresharedKey { get; init; }
    public string? Endpoint { get; init; }
    public int? PersistentKeepalive { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public bool ClearExpiresAt { get; init; }
}

/// <summary>The answer of enable/disable: whether it changed anything, and the peer now.</summary>
public sealed record PeerStateChangeDto
{
    public bool Changed { get; init; }
    public required PeerDto Peer { get; init; }
}

/// <summary>POST /v1/servers/{name}/clients (New-WgClient).</summary>
public sealed record ClientCreateDto
{
    public required string Name { get; init; }
    /// <summary>host[:port] the client dials; the port defaults to the gateway's. Required: a service cannot guess its public name.</summary>
    public required string Endpoint { get; init; }
    public string[]? Dns { get; init; }
    /// <summary>What the client routes into the tunnel; default 0.0.0.0/0, ::/0.</summary>
    public string[]? AllowedIPs { get; init; }
    /// <summary>Route only the gateway's own prefixes (instead of AllowedIPs).</summary>
    public bool SplitTunnel { get; init; }
    public bool WithPresharedKey { get; init; }
    public int PersistentKeepalive { get; init; } = 25;
    /// <summary>QR codes to return: "png" (base64 in QrPng), "svg" (QrSvg).</summary>
    public string[]? Qr { get; init; }
    /// <summary>Also make a single-use link that serves Config once (then 410), valid this many seconds (at most 7 days).</summary>
    public int? LinkSeconds { get; init; }
}

/// <summary>A provisioned client. Config holds the client's private key: this answer is the only place it ever exists.</summary>
public sealed record ClientDto
{
    public required string Server { get; init; }
    public required string Name { get; init; }
    public required string PublicKey { get; init; }
    public string[] Address { get; init; } = [];
    public required string Endpoint { get; init; }
    public string[] Dns { get; init; } = [];
    public string[] AllowedIPs { get; init; } = [];
    public int PersistentKeepalive { get; init; }
    public bool HasPresharedKey { get; init; }
    public required string Config { get; init; }
    public string? QrPng { get; init; }
    public string? QrSvg { get; init; }
    /// <summary>The single-use link's path (GET it once, then 410), when asked for.</summary>
    public string? Link { get; init; }
    public DateTimeOffset? LinkExpiresAt { get; init; }
}

/// <summary>GET /v1/servers/{name}/stats: the engine's counters and the peer gauges.</summary>
public sealed record StatsDto
{
    public long ReceivedBytes { get; init; }
    public long SentBytes { get; init; }
    public long DroppedPackets { get; init; }
    public long HandshakesCompleted { get; init; }
    public long CookieRepliesSent { get; init; }
    public long RateLimitedHandshakes { get; init; }
    public long InvalidHandshakes { get; init; }
    public int PeersConfigured { get; init; }
    public int PeersEnabled { get; init; }
    /// <summary>Peers with a handshake in the last 180 s (WireGuard's reject-after time).</summary>
    public int PeersConnected { get; init; }
    public Dictionary<string, long>? Egress { get; init; }
}

/// <summary>Every error: the cmdlets' stable ErrorId, a message (never key material), the kind.</summary>
public sealed record ErrorDto
{
    public required string ErrorId { get; init; }
    public required string Message { get; init; }
    /// <summary>The engine's WgErrorKind or the HTTP layer's ("Request", "Authentication").</summary>
    public string? Kind { get; init; }
}

/// <summary>The JSON settings both ends use: camelCase, enums as strings, unknown fields an error.</summary>
public static class WgApiJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions o)
    {
        o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        o.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        o.NumberHandling = JsonNumberHandling.Strict;
        o.Converters.Add(new JsonStringEnumConverter());
        return o;
    }
}

/// <summary>A webhook's body: the event, when, where, and the peer right after it (no key material but its public key).</summary>
public sealed record WebhookEventDto
{
    public required string Id { get; init; }
    /// <summary>PeerCreated, PeerRemoved, PeerEnabled, PeerDisabled, PeerExpired or PeerFirstHandshake.</summary>
    public required string Type { get; init; }
    public DateTimeOffset Time { get; init; }
    public required string Server { get; init; }
    public required PeerDto Peer { get; init; }
}
