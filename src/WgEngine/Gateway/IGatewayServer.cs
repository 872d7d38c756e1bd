using WgEngine.Config;
using WgEngine.Contracts;
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
    /// <summary>Every counter the engine has (drops by reason, batches, egress, TUN), read when accessed;
    /// null where the gateway is not in this process.</summary>
    ServerMetrics? Metrics => null;
    string? ConfigPath { get; }
    string? UapiPath { get; }
    /// <summary>The address the UDP socket is bound to; null = all addresses.</summary>
    System.Net.IPAddress? BindAddress { get; }
    /// <summary>The tunnel MTU of the engine; null for an external device (it has its own).</summary>
    int? Mtu { get; }
    /// <summary>True when the config file is read-only: the gateway runs as the file says and refuses changes.</summary>
    bool ConfigReadOnly { get; }
    /// <summary>The userspace egress's rules (exceptions and refusals on top of the built-in ones).</summary>
    EgressRules EgressRules { get; }
    /// <summary>Client isolation: peers do not reach each other through the hub unless a rule allows it.</summary>
    bool PeerIsolation { get; }
    /// <summary>The ordered rules of every tag.</summary>
    IReadOnlyDictionary<string, IReadOnlyList<Policy.AclRule>> TagRules { get; }
    /// <summary>Completes when the gateway stops.</summary>
    Task Completion { get; }

    PeerStatus AddPeer(PeerSpec spec);
    IReadOnlyList<PeerBatchResult> AddPeers(IReadOnlyList<PeerSpec> specs, bool allocateWhenEmpty = true);
    PeerStatus UpdatePeer(WgKey publicKey, PeerUpdate changes);
    bool RemovePeer(WgKey publicKey);
    /// <summary>Removes many peers, saved once; an item is false when its key is unknown.</summary>
    IReadOnlyList<bool> RemovePeers(IReadOnlyList<WgKey> publicKeys);
    /// <summary>Changes many peers, saved once; each item fails on its own (its WgException in the result).</summary>
    IReadOnlyList<PeerBatchResult> UpdatePeers(IReadOnlyList<(WgKey PublicKey, PeerUpdate Changes)> updates);
    PeerStatus? GetPeerInfo(WgKey publicKey);
    IReadOnlyList<PeerStatus> GetPeers();
    bool DisablePeer(WgKey publicKey);
    bool EnablePeer(WgKey publicKey);
    void SetListenPort(int port);
    void SetPeerIsolation(bool on);
    void SetEgressRules(EgressRules rules);
    void SetTagRules(string tag, IReadOnlyList<Policy.AclRule> rules);
    /// <summary>Takes ownership of <paramref name="key"/> on success.</summary>
    void SetPrivateKey(WgPrivateKey key);
    /// <summary>The configuration as text; preshared keys only when asked for (the default text is safe to share).</summary>
    string ExportConfigText(WgConfigFormat format, bool includePrivateKey, bool includePresharedKeys = false);
    void Stop();
}

public sealed partial class VPNServer : IGatewayServer { }
