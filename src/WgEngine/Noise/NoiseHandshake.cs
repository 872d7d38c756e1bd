using WgEngine.Crypto;

namespace WgEngine.Noise;

/// <summary>
/// The Noise_IKpsk2 pattern (whitepaper §5.4; Noise spec §7.5 with the psk2 modifier) over one
/// chaining key and hash. No I/O, no wire framing: messages are the contiguous Noise bodies
/// (initiation: e || enc(s) || enc(payload); response: e || enc(payload)). WireGuard calls it with
/// its prologue and the TAI64N payload; the generic Noise test vector with its own. Each AEAD key is
/// used once, with nonce 0. Failed reads leave the state unchanged.
/// </summary>
internal sealed class NoiseHandshake
{
    private readonly byte[] _ck = new byte[32];
    private readonly byte[] _h = new byte[32];

    /// <summary>The handshake hash (Noise's h); final after the response.</summary>
    public ReadOnlySpan<byte> Hash => _h;
    internal ReadOnlySpan<byte> ChainKey => _ck;

    /// <summary>Starts from C0/H0 as WireGuard does: ck = HASH(name), h = HASH(ck || prologue), then h = HASH(h || responderStatic).</summary>
    public void Initialize(ReadOnlySpan<byte> initialChainKey, ReadOnlySpan<byte> initialHash, ReadOnlySpan<byte> responderStatic)
    {
        initialChainKey.CopyTo(_ck);
        Blake2s.Hash(initialHash, responderStatic, _h);
    }

    /// <summary>Starts from a chaining key and an already computed hash (a responder precomputes HASH(H0 || own static)).</summary>
    public void InitializeWithHash(ReadOnlySpan<byte> chainKey, ReadOnlySpan<byte> hash)
    {
        chainKey.CopyTo(_ck);
        hash.CopyTo(_h);
    }

    /// <summary>For WireGuard: ck = C0, h = HASH(H0 || responderStatic).</summary>
    public void InitializeWireGuard(ReadOnlySpan<byte> responderStatic) =>
        Initialize(NoiseConstants.InitialChainKey, NoiseConstants.InitialHash, responderStatic);

    public void CopyFrom(NoiseHandshake other)
    {
        other._ck.CopyTo(_ck, 0);
        other._h.CopyTo(_h, 0);
    }

    public void Clear()
    {
        Array.Clear(_ck);
        Array.Clear(_h);
    }

    public static int InitiationBodySize(int payloadLength) => 32 + 48 + payloadLength + 16;
    public static int ResponseBodySize(int payloadLength) => 32 + payloadLength + 16;

    /// <summary>Initiator: e, es, s, ss, payload. False when a DH result is zero (bad remote key).</summary>
    public bool WriteInitiation(ReadOnlySpan<byte> ephemeralPrivate, ReadOnlySpan<byte> localStaticPrivate,
        ReadOnlySpan<byte> localStaticPublic, ReadOnlySpan<byte> remoteStatic, ReadOnlySpan<byte> payload, Span<byte> body)
    {
        Span<byte> k = stackalloc byte[32];
        Span<byte> dh = stackalloc byte[32];
        try
        {
            var ePub = body[..32];
            X25519.PublicKey(ephemeralPrivate, ePub);
            MixEphemeral(ePub);
            if (!X25519.SharedSecret(ephemeralPrivate, remoteStatic, dh)) return false;
            Kdf.Kdf2(_ck, dh, _ck, k);
            EncryptAndHash(k, localStaticPublic, body.Slice(32, 48));
            if (!X25519.SharedSecret(localStaticPrivate, remoteStatic, dh)) return false;
            Kdf.Kdf2(_ck, dh, _ck, k);
            EncryptAndHash(k, payload, body.Slice(80, payload.Length + 16));
            return true;
        }
        finally
        {
            k.Clear();
            dh.Clear();
        }
    }

    /// <summary>
    /// Responder: reads an initiation body. On success the state holds the initiation's ck/h, and the
    /// initiator's ephemeral and static keys and the decrypted payload are returned. On failure nothing changes.
    /// </summary>
    public bool ReadInitiation(ReadOnlySpan<byte> body, ReadOnlySpan<byte> localStaticPrivate,
        Span<byte> remoteEphemeral, Span<byte> remoteStatic, Span<byte> payload) =>
        ReadInitiation(body, localStaticPrivate, remoteEphemeral, remoteStatic, payload, null);

    /// <summary>
    /// As above, with the static-static DH taken from <paramref name="staticStatic"/> once the
    /// initiator's static key is known: a responder that knows its peers answers unknown ones without
    /// that DH, and caches it for known ones (as wireguard-go's precomputedStaticStatic).
    /// </summary>
    public bool ReadInitiation(ReadOnlySpan<byte> body, ReadOnlySpan<byte> localStaticPrivate,
        Span<byte> remoteEphemeral, Span<byte> remoteStatic, Span<byte> payload, IStaticStaticSource? staticStatic)
    {
        int payloadLength = body.Length - 32 - 48 - 16;
        if (payloadLength < 0 || payload.Length < payloadLength) return false;
        Span<byte> ck = stackalloc byte[32];
        Span<byte> h = stackalloc byte[32];
        Span<byte> k = stackalloc byte[32];
        Span<byte> dh = stackalloc byte[32];
        try
        {
            _ck.CopyTo(ck);
            _h.CopyTo(h);
            var ePub = body[..32];
            Blake2s.Hash(h, ePub, h);
            Kdf.Kdf1(ck, ePub, ck);
            if (!X25519.SharedSecret(localStaticPrivate, ePub, dh)) return false;
            Kdf.Kdf2(ck, dh, ck, k);
            if (!DecryptAndHash(k, h, body.Slice(32, 48), remoteStatic)) return false;
            if (staticStatic is not null ? !staticStatic.TryGetStaticStatic(remoteStatic, dh)
                                         : !X25519.SharedSecret(localStaticPrivate, remoteStatic, dh)) return false;
            Kdf.Kdf2(ck, dh, ck, k);
            if (!DecryptAndHash(k, h, body.Slice(80, payloadLength + 16), payload)) return false;
            ePub.CopyTo(remoteEphemeral);
            ck.CopyTo(_ck);
            h.CopyTo(_h);
            return true;
        }
        finally
        {
            ck.Clear(); h.Clear(); k.Clear(); dh.Clear();
        }
    }

    /// <summary>Responder: e, ee, se, psk, payload.</summary>
    public bool WriteResponse(ReadOnlySpan<byte> ephemeralPrivate, ReadOnlySpan<byte> remoteEphemeral,
        ReadOnlySpan<byte> remoteStatic, ReadOnlySpan<byte> presharedKey, ReadOnlySpan<byte> payload, Span<byte> body)
    {
        Span<byte> k = stackalloc byte[32];
        Span<byte> t = stackalloc byte[32];
        Span<byte> dh = stackalloc byte[32];
        try
        {
            var ePub = body[..32];
            X25519.PublicKey(ephemeralPrivate, ePub);
            MixEphemeral(ePub);
            if (!X25519.SharedSecret(ephemeralPrivate, remoteEphemeral, dh)) return false;
            Kdf.Kdf1(_ck, dh, _ck);
            if (!X25519.SharedSecret(ephemeralPrivate, remoteStatic, dh)) return false;
            Kdf.Kdf1(_ck, dh, _ck);
            Kdf.Kdf3(_ck, presharedKey, _ck, t, k);
            Blake2s.Hash(_h, t, _h);
            EncryptAndHash(k, payload, body.Slice(32, payload.Length + 16));
            return true;
        }
        finally
        {
            k.Clear(); t.Clear(); dh.Clear();
        }
    }

    /// <summary>Initiator: reads a response body. On failure nothing changes.</summary>
    public bool ReadResponse(ReadOnlySpan<byte> body, ReadOnlySpan<byte> ephemeralPrivate,
        ReadOnlySpan<byte> localStaticPrivate, ReadOnlySpan<byte> presharedKey, Span<byte> payload)
    {
        int payloadLength = body.Length - 32 - 16;
        if (payloadLength < 0 || payload.Length < payloadLength) return false;
        Span<byte> ck = stackalloc byte[32];
        Span<byte> h = stackalloc byte[32];
        Span<byte> k = stackalloc byte[32];
        Span<byte> t = stackalloc byte[32];
        Span<byte> dh = stackalloc byte[32];
        try
        {
            _ck.CopyTo(ck);
            _h.CopyTo(h);
            var ePub = body[..32];
            Blake2s.Hash(h, ePub, h);
            Kdf.Kdf1(ck, ePub, ck);
            if (!X25519.SharedSecret(ephemeralPrivate, ePub, dh)) return false;
            Kdf.Kdf1(ck, dh, ck);
            if (!X25519.SharedSecret(localStaticPrivate, ePub, dh)) return false;
            Kdf.Kdf1(ck, dh, ck);
            Kdf.Kdf3(ck, presharedKey, ck, t, k);
            Blake2s.Hash(h, t, h);
            if (!DecryptAndHash(k, h, body.Slice(32, payloadLength + 16), payload)) return false;
            ck.CopyTo(_ck);
            h.CopyTo(_h);
            return true;
        }
        finally
        {
            ck.Clear(); h.Clear(); k.Clear(); t.Clear(); dh.Clear();
        }
    }

    /// <summary>Noise Split(): (initiator send = responder receive, initiator receive = responder send) = KDF2(ck, empty).</summary>
    public void Split(bool isInitiator, Span<byte> sendKey, Span<byte> receiveKey)
    {
        Span<byte> t1 = stackalloc byte[32];
        Span<byte> t2 = stackalloc byte[32];
        Kdf.Kdf2(_ck, ReadOnlySpan<byte>.Empty, t1, t2);
        if (isInitiator) { t1.CopyTo(sendKey); t2.CopyTo(receiveKey); }
        else { t2.CopyTo(sendKey); t1.CopyTo(receiveKey); }
        t1.Clear();
        t2.Clear();
    }

    private void MixEphemeral(ReadOnlySpan<byte> ePub)
    {
        Blake2s.Hash(_h, ePub, _h);
        Kdf.Kdf1(_ck, ePub, _ck);
    }

    private void EncryptAndHash(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        ChaChaPoly.Seal(key, 0, plaintext, _h, destination);
        Blake2s.Hash(_h, destination, _h);
    }

    private static bool DecryptAndHash(ReadOnlySpan<byte> key, Span<byte> h, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
    {
        if (!ChaChaPoly.Open(key, 0, ciphertext, h, plaintext)) return false;
        Blake2s.Hash(h, ciphertext, h);
        return true;
    }
}

/// <summary>Supplies DH(local static, remote static) for a known remote static key; false for an unknown one.</summary>
internal interface IStaticStaticSource
{
    bool TryGetStaticStatic(ReadOnlySpan<byte> remoteStatic, Span<byte> sharedSecret);
}
