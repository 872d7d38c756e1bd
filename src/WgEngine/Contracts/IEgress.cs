using WgEngine.Crypto;

namespace WgEngine.Contracts;

/// <summary>Where packets go that are neither for the gateway itself nor for another peer.</summary>
internal interface IEgress
{
    /// <summary>Called on a worker thread with a decrypted, source-checked packet. Must not keep the span.</summary>
    void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet);
}
