using WgEngine.Crypto;

namespace WgEngine.Egress;

/// <summary>The way back into the tunnel: an IP packet addressed to a peer (WgDevice.SendPacket routes it
/// by its destination through the allowed-IPs table). False when no peer owns the destination.</summary>
internal interface IPacketSink
{
    bool SendPacket(ReadOnlySpan<byte> ipPacket);

    /// <summary>Starts collecting the calling thread's packets so that a burst leaves in one system call.
    /// True when this call opened the batch: then call <see cref="EndBatch"/> on the same thread before it
    /// blocks. The default batches nothing.</summary>
    bool BeginBatch() => false;

    /// <summary>Sends what the batch opened by <see cref="BeginBatch"/> collected.</summary>
    void EndBatch() { }
}

/// <summary>
/// One transport protocol of the userspace egress (TCP, UDP, ICMP). The dispatcher hands it the peers'
/// packets of that protocol after the destination passed <see cref="EgressPolicy"/>.
/// </summary>
internal interface IEgressProtocol : IDisposable
{
    /// <summary>Called on a crypto worker thread with a source-checked IP packet; must not keep the span
    /// and must not block (host I/O happens on the protocol's own threads or async callbacks).</summary>
    void OnPacket(WgKey fromPeer, ReadOnlySpan<byte> ipPacket);
}
