using System.Net;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>How to start a <see cref="VPNServer"/>.</summary>
public sealed class ServerOptions
{
    public string Name { get; init; } = "wg0";

    /// <summary>UDP port; 0 lets the OS pick one (VPNServer.ListenPort reports the real one).
    /// A backend that does not own its socket (Uapi): <see cref="KeepDevicePort"/> leaves the device's port as it is.</summary>
    public int ListenPort { get; init; } = 51820;

    /// <summary>For a backend that does not own its socket (Uapi): do not change the device's listen port.</summary>
    public const int KeepDevicePort = -1;

    /// <summary>Generated when null. A key passed in stays owned by the caller (not disposed on Stop).</summary>
    public WgPrivateKey? PrivateKey { get; init; }

    /// <summary>The gateway's own tunnel addresses; each prefix is also the pool clients are allocated from.</summary>
    public IReadOnlyList<IpPrefix> Addresses { get; init; } = [IpPrefix.Parse("10.8.0.1/24")];

    /// <summary>Userspace (the in-process network stack re-dials the peers' traffic from the host), Tun (a TUN
    /// interface: the host routes) or None (hub only). Null: Userspace when the backend has an egress
    /// (<see cref="BackendCapabilities.HasEgress"/>), else None; any other value there is an error (EgressNotApplicable).</summary>
    public EgressMode? Egress { get; init; }

    /// <summary>Limits and allow list of the userspace egress; null = defaults.</summary>
    public EgressOptions? EgressOptions { get; init; }

    /// <summary>The engine to drive; <see cref="Gateway.BackendFactory"/> builds it. With <see cref="BackendFactory"/> set,
    /// that builds it instead and this kind's capabilities still apply.</summary>
    public BackendKind Backend { get; init; } = BackendKind.Userspace;

    /// <summary>IP address to bind the UDP socket to; null = all addresses.</summary>
    public IPAddress? BindAddress { get; init; }

    /// <summary>Tunnel MTU (576-65535); null = the config file's MTU, else <see cref="InterfaceConfig.DefaultMtu"/>.
    /// Given with an existing ConfigPath it overrides the file's and is written back.</summary>
    public int? Mtu { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Userspace backend: the UAPI socket to serve (null = none; <see cref="Uapi.UapiSocketFile.DefaultPath"/>
    /// gives the conventional one). Uapi backend: the socket of the external device to manage.
    /// </summary>
    public string? UapiPath { get; init; }

    /// <summary>
    /// A wg-quick file this server loads on Start (when it exists) and rewrites atomically after every change;
    /// null = no persistence. Precedence when the file exists: its PrivateKey, ListenPort and Address win,
    /// except that <see cref="OverrideListenPort"/>/<see cref="OverrideAddresses"/> make the options win (and
    /// are written back); a <see cref="PrivateKey"/> that differs from the file's is an error (ConfigConflict).
    /// </summary>
    public string? ConfigPath { get; init; }

    /// <summary>With an existing <see cref="ConfigPath"/>: use <see cref="ListenPort"/> instead of the file's.</summary>
    public bool OverrideListenPort { get; init; }

    /// <summary>With an existing <see cref="ConfigPath"/>: use <see cref="Addresses"/> instead of the file's.</summary>
    public bool OverrideAddresses { get; init; }

    /// <summary>With an existing <see cref="ConfigPath"/>: use the egress rules of <see cref="EgressOptions"/>
    /// (Allow, Deny, Unprotected) instead of the file's.</summary>
    public bool OverrideEgressRules { get; init; }

    /// <summary>Client isolation: peer-to-peer traffic refused unless a rule allows it. Null: the config file's, else off.</summary>
    public bool? PeerIsolation { get; init; }

    /// <summary>Told (on any thread: return at once) about conditions an operator should fix, e.g. no unprivileged ICMP sockets for the egress
    /// null = not logged. Messages never hold key material.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>For tests: builds the backend instead of the factory's.</summary>
    internal Func<InterfaceConfig, IWireGuardBackend>? BackendFactory { get; init; }

    /// <summary>The capabilities of <see cref="Backend"/>. Throws WgException(BackendNotAvailable) for an unknown kind.</summary>
    public BackendCapabilities Capabilities => Gateway.BackendFactory.CapabilitiesOf(Backend);

    /// <summary>The egress the server runs with: <see cref="Egress"/>, or the backend's default.</summary>
    public EgressMode EffectiveEgress => Egress ?? (Capabilities.HasEgress ? EgressMode.Userspace : EgressMode.None);

    /// <summary>
    /// Checks what can be checked without touching the system (name, port, and the settings that the backend's
    /// capabilities rule out); VPNServer.Start does this first. Front ends call it to refuse before asking anything.
    /// Throws <see cref="WgException"/> with a stable ErrorId.
    /// </summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidServerName", "A server needs a non-empty name.");
        var caps = Capabilities;
        if (ListenPort is < 0 or > 65535 && !(!caps.OwnsPrivateKey && ListenPort == KeepDevicePort))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidListenPort", $"ListenPort {ListenPort} is outside 0-65535.");
        if (!caps.HasEgress && ((Egress is { } e && e != EgressMode.None) || EgressOptions is not null))
            throw new WgException(WgErrorKind.InvalidArgument, "EgressNotApplicable",
                $"-Egress and its -EgressAllow/-EgressDeny/-EgressUnprotected/-EgressLimit apply to the in-process engine; with -Backend {Backend} the external device routes its peers' traffic itself.");
        if (!caps.OwnsSocket && BindAddress is not null)
            throw new WgException(WgErrorKind.InvalidArgument, "SettingNotApplicable",
                $"-BindAddress applies to the in-process engine's socket; -Backend {Backend} has its own socket (listening on all addresses).");
        if (!caps.SetsMtu && Mtu is not null)
            throw new WgException(WgErrorKind.InvalidArgument, "SettingNotApplicable",
                $"-MTU applies to a device the server configures; an external device (-Backend {Backend}) has its own MTU.");
        if (!caps.ServesUapi && !caps.ManagesUapiDevice && UapiPath is not null)
            throw new WgException(WgErrorKind.InvalidArgument, "UapiNotServed",
                $"-Backend {Backend} serves no UAPI socket: `wg` manages its device directly.");
        if (!caps.EnforcesPolicy && PeerIsolation == true)
            throw new WgException(WgErrorKind.InvalidOperation, "PolicyNotApplicable",
                $"Client isolation, tags and ACLs are enforced by the in-process engine only; -Backend {Backend} cannot apply them.");
        if (!caps.Persists && ConfigPath is not null)
            throw new WgException(WgErrorKind.InvalidOperation, "ConfigPathNotSupported",
                $"-ConfigPath works with the Userspace backend only; an external device (-Backend {Backend}) keeps its own configuration.");
    }
}

/// <summary>A peer to add. Null/empty AllowedIPs means "allocate from the pool".</summary>
public sealed record PeerSpec
{
    public required WgKey PublicKey { get; init; }
    public IReadOnlyList<IpPrefix>? AllowedIPs { get; init; }
    public string? Name { get; init; }
    public WgKey? PresharedKey { get; init; }
    public IPEndPoint? Endpoint { get; init; }
    /// <summary>Seconds, 0 = off.</summary>
    public int PersistentKeepalive { get; init; }
    /// <summary>Added disabled: kept in the list and the config, its AllowedIPs reserved, but not in the engine.</summary>
    public bool Disabled { get; init; }
    /// <summary>When the peer is disabled automatically; null = never.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
    /// <summary>The endpoint as given when it is a host name (a config file, `Add-WgPeer -Endpoint host:port`):
    /// <see cref="Endpoint"/> is what it resolved to; the text is written back to the config unchanged.</summary>
    public string? EndpointText { get; init; }
    /// <summary>The peer's own ordered access rules.</summary>
    public IReadOnlyList<Policy.AclRule>? Acl { get; init; }
    /// <summary>Tags whose rules apply after the peer's own.</summary>
    public IReadOnlyList<string>? Tags { get; init; }
    /// <summary>Bandwidth of what the peer sends; null = unlimited.</summary>
    public Policy.RateLimit? UploadLimit { get; init; }
    /// <summary>Bandwidth of what the peer receives; null = unlimited.</summary>
    public Policy.RateLimit? DownloadLimit { get; init; }
    /// <summary>The data quota; null = none.</summary>
    public Policy.DataQuota? Quota { get; init; }
    /// <summary>From a config file: what was used of the quota, since when, and why the peer is disabled.</summary>
    internal long QuotaUsedBytes { get; init; }
    internal DateTimeOffset? QuotaPeriodStart { get; init; }
    internal string? DisabledReason { get; init; }
}

/// <summary>
/// Changes to a peer for <see cref="VPNServer.UpdatePeer"/>: null leaves a field unchanged.
/// An empty AllowedIPs list clears them (as `wg set ... allowed-ips ""` does).
/// </summary>
public sealed record PeerUpdate
{
    public IReadOnlyList<IpPrefix>? AllowedIPs { get; init; }
    public string? Name { get; init; }
    public WgKey? PresharedKey { get; init; }
    /// <summary>True to remove the preshared key (PresharedKey is then ignored).</summary>
    public bool ClearPresharedKey { get; init; }
    public IPEndPoint? Endpoint { get; init; }
    /// <summary>With <see cref="Endpoint"/>: the host name it was resolved from, kept for the config file.</summary>
    public string? EndpointText { get; init; }
    public int? PersistentKeepalive { get; init; }
    /// <summary>A new expiry time (a time already past disables the peer at once).</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
    /// <summary>True to remove the expiry (ExpiresAt is then ignored).</summary>
    public bool ClearExpiresAt { get; init; }
    /// <summary>New access rules (empty: none).</summary>
    public IReadOnlyList<Policy.AclRule>? Acl { get; init; }
    /// <summary>New tags (empty: none).</summary>
    public IReadOnlyList<string>? Tags { get; init; }
    /// <summary>A new upload limit; a rate of 0 removes it.</summary>
    public Policy.RateLimit? UploadLimit { get; init; }
    /// <summary>A new download limit; a rate of 0 removes it.</summary>
    public Policy.RateLimit? DownloadLimit { get; init; }
    /// <summary>A new data quota (the usage so far counts against it); 0 bytes removes it.</summary>
    public Policy.DataQuota? Quota { get; init; }
}

public enum ServerState { Running, Stopped }
