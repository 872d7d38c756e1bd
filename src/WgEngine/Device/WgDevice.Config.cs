using WgEngine.Crypto;
using WgEngine.Session;

namespace WgEngine.Device;

/// <summary>Interface-wide settings changed while running (UAPI `set` of private_key).</summary>
internal sealed partial class WgDevice
{
    /// <summary>
    /// Replaces the interface's static key, as wireguard-go's SetPrivateKey does: every session and
    /// handshake is dropped (they were made with the old identity) and a peer whose public key equals
    /// the new one is removed. The caller keeps <paramref name="key"/> alive while the device runs.
    /// A handshake being processed at this instant may still use the old key and then simply fails.
    /// </summary>
    public void SetPrivateKey(WgPrivateKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_configLock)
        {
            if (key.PublicKey == PublicKey) return;
            RemovePeer(key.PublicKey);
            _privateKey = key;
            _cookieChecker = new Noise.CookieChecker(key.PublicKey, _time);
            Span<byte> pub = stackalloc byte[32];
            key.PublicKey.CopyTo(pub);
            Blake2s.Hash(Noise.NoiseConstants.InitialHash, pub, _initialHashForUs);
            foreach (var peer in _peers.Values)
            {
                ZeroPeer(peer);
                // Replay state belongs to the old identity: an old initiation cannot decrypt under the
                // new key, and keeping it would refuse a peer's prompt re-handshake whose TAI64N falls in
                // the same 2^24 ns step as its last one (or within the 20 ms flood gap).
                peer.Session.ForgetRemoteHistory();
            }
        }
    }
}
