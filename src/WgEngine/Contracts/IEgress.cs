using WgEngine.Crypto;

namespace WgEngine.Contracts;

/// <summary>Where packets go that are neither for the gateway itself nor for another peer.</summary>
internal interface IEgress
{
    /// <summary>Called on a worker thread with a decrypted, source-checked packet. Must not keep the span.</summary>
    void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet);
}

/// <summary>
/// An egress that takes packets a batch at a time: a crypto worker gets its own
/// <see cref="IEgressBatch"/> and flushes it when its queue runs empty, so the egress sees what one
/// wake-up decrypted together (the TUN egress coalesces it into super-packets). Packets of one peer
/// stay in order. Egresses without it get every packet through <see cref="IEgress.Deliver"/>.
/// </summary>
internal interface IBatchEgress : IEgress
{
    /// <summary>A collector for the calling thread alone (never shared between threads).</summary>
    IEgressBatch CreateBatch();
}

/// <summary>One thread's pending packets for a <see cref="IBatchEgress"/>.</summary>
internal interface IEgressBatch
{
    /// <summary>Takes a copy of the packet (the span is not kept); may write earlier ones when full.</summary>
    void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet);

    /// <summary>Writes everything collected so far.</summary>
    void Flush();
}
