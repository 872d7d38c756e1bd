using WgEngine.Crypto;

namespace WgEngine.Contracts;

/// <summary>
/// What the VPNServer facade drives: one WireGuard interface. Implementations: the in-process
/// userspace engine (Gateway.UserspaceBackend), an external device over UAPI (Uapi.UapiBackend).
/// Implementations validate nothing about policy (overlaps, pools): the facade does that.
/// All members are thread-safe.
/// </summary>
internal interface IWireGuardBackend : IDisposable
{
    /// <summary>The backend's name as shown ("Userspace", "Uapi"; its BackendKind's name).</summary>
    string Kind { get; }

    WgKey PublicKey { get; }

    /// <summary>The UDP port actually bound (never 0 once started).</summary>
    int ListenPort { get; }

    bool IsRunning { get; }

    /// <summary>Adds a new peer. Throws WgException(AlreadyExists) for a known public key.</summary>
    void AddPeer(PeerConfig peer);

    /// <summary>Replaces a peer's configuration in place, keeping its sessions. Throws WgException(NotFound).</summary>
    void UpdatePeer(PeerConfig peer);

    /// <summary>Removes a peer and drops its sessions at once. False when unknown.</summary>
    bool RemovePeer(WgKey publicKey);

    PeerStatus? GetPeer(WgKey publicKey);

    IReadOnlyList<PeerStatus> GetPeers();

    InterfaceStats GetStats();

    /// <summary>Stops the interface and frees its socket. Idempotent.</summary>
    void Stop();

    /// <summary>Completes when the interface has stopped (by Stop or by failure).</summary>
    Task Completion { get; }
}
