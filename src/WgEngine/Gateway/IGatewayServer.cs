using WgEngine.Config;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>
/// A gateway as the front ends (cmdlets) use it: the in-process <see cref="VPNServer"/>, or one running in
/// a host process reached over its management API. Same semantics either way: the same results, and
/// failures as <see cref="WgException"/> with the same ErrorIds.
/// </summary>
public interface IGatewayServer
{
    string Name { get; }
    WgKey PublicKey { get; }
    int ListenPort { get; }
    IReadOnlyList<IpPrefix> Addresses { get; }
    string BackendKind { get; }
    EgressMode Egress { get; }
    ServerState State { get; }
    DateTimeOffset StartedAt { get; }
    int PeerCount { get; }
    long ReceivedBytes { get; }
    long SentBytes { get; }
    InterfaceStats Stats { get; }
    /// <summary>Live egress counters; null without a userspace egress (or when not in this process).</summary>
    EgressCounters? EgressCounters { get; }
    string? ConfigPath { get; }
    string? UapiPath { get; }
    /// <summary>Completes when the gateway stops.</summary>
    Task Completion { get; }

    PeerStatus AddPeer(PeerSpec spec);
    IReadOnlyList<PeerBatchResult> AddPeers(IReadOnlyList<PeerSpec> specs, bool allocateWhenEmpty = true);
    PeerStatus UpdatePeer(WgKey publicKey, PeerUpdate changes);
    bool RemovePeer(WgKey publicKey);
    PeerStatus? GetPeerInfo(WgKey publicKey);
    IReadOnlyList<PeerStatus> GetPeers();
    bool DisablePeer(WgKey publicKey);
    bool EnablePeer(WgKey publicKey);
    void SetListenPort(int port);
    /// <summary>Takes ownership of <paramref name="key"/> on success.</summary>
    void SetPrivateKey(WgPrivateKey key);
    string ExportConfigText(WgConfigFormat format, bool includePrivateKey);
    void Stop();
}

public sealed partial class VPNServer : IGatewayServer { }
