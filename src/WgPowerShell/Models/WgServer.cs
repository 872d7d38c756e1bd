using WgEngine.Contracts;
using WgEngine.Gateway;

namespace WgPowerShell.Models;

/// <summary>
/// A gateway of this session, read live from the engine. Deliberately has no private key: nothing
/// that formats or serialises this object can reveal it.
/// </summary>
public sealed class WgServer
{
    internal WgServer(IGatewayServer server) => Server = server;

    internal IGatewayServer Server { get; }

    public string Name => Server.Name;
    public string PublicKey => Server.PublicKey.ToBase64();
    public int ListenPort => Server.ListenPort;
    /// <summary>The local address the UDP socket is bound to; null = all addresses.</summary>
    public string? BindAddress => Server.BindAddress?.ToString();
    /// <summary>The tunnel MTU; null for an external device (-Backend Uapi).</summary>
    public int? MTU => Server.Mtu;
    public string[] Address => Server.Addresses.Select(a => a.ToString()).ToArray();
    public string Backend => Server.BackendKind;
    public string Egress => Server.Egress.ToString();
    public int PeerCount => Server.PeerCount;
    public string State => Server.State.ToString();
    public DateTimeOffset StartedAt => Server.StartedAt;
    public long ReceivedBytes => Server.ReceivedBytes;
    public long SentBytes => Server.SentBytes;
    /// <summary>Engine counters, read when accessed: drops, handshakes, cookie replies, rate-limited handshakes.</summary>
    public InterfaceStats Stats => Server.Stats;
    /// <summary>Userspace egress counters, read when accessed (flows, limits biting, refused destinations); null without one.</summary>
    public WgEngine.Egress.EgressCounters? EgressStats => Server.EgressCounters;
    /// <summary>Every engine counter in one snapshot, read when accessed (drops by reason, UDP batch sizes, egress
    /// and TUN counters): what the host's /metrics exports; null for a gateway in another process.</summary>
    public WgEngine.Contracts.ServerMetrics? Metrics => Server.Metrics;
    /// <summary>The egress rules in force: Allow exceptions, Deny additions, Unprotected (docs/egress.md).</summary>
    public WgEngine.Egress.EgressRules EgressRules => Server.EgressRules;
    /// <summary>Client isolation: peers do not reach each other unless a rule of the sender allows it (docs/policy.md).</summary>
    public bool PeerIsolation => Server.PeerIsolation;
    /// <summary>The wg-quick file kept in sync (Start-WgServer -ConfigPath); null when none.</summary>
    public string? ConfigPath => Server.ConfigPath;
    /// <summary>True when the server runs from a read-only ConfigPath (e.g. a mounted Secret) and refuses changes.</summary>
    public bool ConfigReadOnly => Server.ConfigReadOnly;
    /// <summary>The UAPI socket: served for `wg show` (Userspace) or managed (Uapi backend); null when none.</summary>
    public string? UapiPath => Server.UapiPath;

    public override string ToString() => Name;
}
