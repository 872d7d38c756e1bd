namespace WgEngine.Contracts;

/// <summary>Which engine a server drives (Gateway.BackendFactory builds it).</summary>
public enum BackendKind
{
    /// <summary>The in-process C# engine on a UDP socket; needs no privileges.</summary>
    Userspace,
    /// <summary>An external WireGuard device (wireguard-go, boringtun, another gateway) managed over its UAPI socket.</summary>
    Uapi,
    /// <summary>The Linux kernel's WireGuard (the wireguard module) over netlink; needs CAP_NET_ADMIN.</summary>
    Kernel,
}

/// <summary>What a kind of backend does, so that the server and its front ends ask this instead of the kind's name.</summary>
public sealed record BackendCapabilities
{
    /// <summary>The server holds the interface's private key (generates one, hands it to the engine, persists it);
    /// false: an external device keeps its own key, and its listen port, unless they are given.</summary>
    public bool OwnsPrivateKey { get; init; }

    /// <summary>The server serves a UAPI socket at UapiPath (`wg show`/`wg set` talk to it).</summary>
    public bool ServesUapi { get; init; }

    /// <summary>UapiPath names the external device's own UAPI socket, which the server manages (and needs).
    /// With neither this nor <see cref="ServesUapi"/> a UapiPath is refused (UapiNotServed).</summary>
    public bool ManagesUapiDevice { get; init; }

    /// <summary>Packets for destinations beyond the peers leave through the engine (Egress Userspace or Tun, with
    /// its rules and limits); false: the device routes them by itself (Egress None).</summary>
    public bool HasEgress { get; init; }

    /// <summary>ConfigPath works: the server loads and rewrites a wg-quick file.</summary>
    public bool Persists { get; init; }

    /// <summary>Client isolation, tags and per-peer ACLs are enforced (they need the in-process data plane);
    /// false: a server configured with them is refused (PolicyNotApplicable).</summary>
    public bool EnforcesPolicy { get; init; }

    /// <summary>The server sets the interface MTU (Mtu applies): the engine pads to it, or the kernel link gets it.</summary>
    public bool SetsMtu { get; init; }

    /// <summary>The engine binds its own UDP socket, so BindAddress applies; false: the device has its own socket.</summary>
    public bool OwnsSocket { get; init; }
}
