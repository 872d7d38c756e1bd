namespace WgEngine.Contracts;

/// <summary>Which engine a server drives (Gateway.BackendFactory builds it).</summary>
public enum BackendKind
{
    /// <summary>The in-process C# engine on a UDP socket; needs no privileges.</summary>
    Userspace,
    /// <summary>An external WireGuard device (wireguard-go, boringtun, another gateway) managed over its UAPI socket.</summary>
    Uapi,
}

/// <summary>What a kind of backend does, so that the server and its front ends ask this instead of the kind's name.</summary>
public sealed record BackendCapabilities
{
    /// <summary>The server holds the interface's private key (generates one, hands it to the engine, persists it);
    /// false: an external device keeps its own unless one is given.</summary>
    public bool OwnsPrivateKey { get; init; }

    /// <summary>The server serves a UAPI socket at UapiPath (`wg show`/`wg set` talk to it); false: UapiPath names
    /// the external device's own socket, which the server manages.</summary>
    public bool ServesUapi { get; init; }

    /// <summary>Packets for destinations beyond the peers leave through the engine (Egress Userspace or Tun, with
    /// its rules and limits); false: the device routes them by itself (Egress None).</summary>
    public bool HasEgress { get; init; }

    /// <summary>ConfigPath works: the server loads and rewrites a wg-quick file.</summary>
    public bool Persists { get; init; }

    /// <summary>The engine binds its own UDP socket and pads to its own MTU, so BindAddress and Mtu apply;
    /// false: the device has its own socket and MTU, and keeps its listen port unless one is given.</summary>
    public bool OwnsSocket { get; init; }
}
