using WgEngine.Crypto;

namespace WgEngine.Contracts;

/// <summary>
/// Interface-wide settings a backend can change while running (what UAPI `set` may ask for beyond
/// peers). Optional: the facade answers EINVAL when its backend does not implement it.
/// </summary>
internal interface IDeviceSettings
{
    /// <summary>SO_MARK of the UDP socket(s); 0 = none.</summary>
    uint Fwmark { get; }

    /// <summary>Rebinds the UDP socket to <paramref name="port"/> (0 = any free port), keeping peers and sessions.
    /// Throws WgException(ResourceUnavailable, "ListenPortInUse") and keeps the old socket on failure.</summary>
    void SetListenPort(int port);

    /// <summary>Sets SO_MARK on the UDP socket(s). Throws WgException(ResourceUnavailable) when not permitted.</summary>
    void SetFwmark(uint mark);

    /// <summary>Replaces the interface's private key: all sessions are dropped and a peer with the new
    /// public key is removed (as wireguard-go does). The caller keeps ownership of <paramref name="key"/>
    /// and keeps it alive while the backend runs.</summary>
    void SetPrivateKey(WgPrivateKey key);
}

/// <summary>A backend that may already hold peers when started (an external device): the facade adopts them.</summary>
internal interface IPeerImport
{
    IReadOnlyList<PeerConfig> ExportPeers();
}
