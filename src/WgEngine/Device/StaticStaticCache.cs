using WgEngine.Crypto;
using WgEngine.Noise;

namespace WgEngine.Device;

/// <summary>
/// The responder's static-static DH per peer (wireguard-go keeps it as precomputedStaticStatic):
/// computed at a peer's first initiation rather than when it is added, so adding 100,000 peers costs
/// no DH, and every later initiation from that peer saves one of the responder's five scalar
/// multiplications. An initiation claiming an unknown static key stops here, before any further DH.
/// Used on the handshake thread only.
/// </summary>
internal sealed class StaticStaticCache(WgDevice device) : IStaticStaticSource
{
    public bool TryGetStaticStatic(ReadOnlySpan<byte> remoteStatic, Span<byte> sharedSecret)
    {
        if (!device.TryGetPeer(new WgKey(remoteStatic), out var peer)) return false;
        var cached = peer.Session.StaticStatic;
        if (cached is null)
        {
            cached = new byte[32];
            if (!X25519.SharedSecret(device.PrivateKeySpan, remoteStatic, cached)) return false;
            peer.Session.StaticStatic = cached;
        }
        cached.CopyTo(sharedSecret);
        return true;
    }
}
