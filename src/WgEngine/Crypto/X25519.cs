namespace WgEngine.Crypto;

/// <summary>Curve25519 Diffie-Hellman (RFC 7748) through libsodium.</summary>
internal static unsafe class X25519
{
    public const int KeySize = 32;

    /// <summary>A new random private key, clamped as RFC 7748 and `wg genkey` do.</summary>
    public static void GeneratePrivateKey(Span<byte> privateKey)
    {
        if (privateKey.Length != KeySize) throw new ArgumentException("32 bytes expected.", nameof(privateKey));
        Sodium.RandomBytes(privateKey);
        Clamp(privateKey);
    }

    public static void Clamp(Span<byte> key)
    {
        key[0] &= 248;
        key[31] = (byte)((key[31] & 127) | 64);
    }

    public static void PublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey)
    {
        if (privateKey.Length != KeySize || publicKey.Length != KeySize) throw new ArgumentException("32-byte keys expected.");
        fixed (byte* q = publicKey) fixed (byte* n = privateKey)
            _ = Sodium.crypto_scalarmult_curve25519_base(q, n);   // fails only for an all-zero result, which the base point never gives
    }

    /// <summary>
    /// DH(privateKey, publicKey). Returns false when the result is all zeros (a low-order point),
    /// which wireguard-go and the kernel also reject.
    /// </summary>
    public static bool SharedSecret(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared)
    {
        if (privateKey.Length != KeySize || publicKey.Length != KeySize || shared.Length != KeySize)
            throw new ArgumentException("32-byte keys expected.");
        fixed (byte* q = shared) fixed (byte* n = privateKey) fixed (byte* p = publicKey)
            return Sodium.crypto_scalarmult_curve25519(q, n, p) == 0;
    }

    /// <summary>
    /// True for a public key of small order (and its non-canonical encodings): the DH result with it is all
    /// zeros whatever the private key, so no handshake with such a peer can ever complete. A comparison,
    /// not a scalar multiplication, so that adding 100,000 peers stays cheap. The list and the masking of
    /// bit 255 are libsodium's has_small_order (crypto_scalarmult/curve25519/ref10/x25519_ref10.c).
    /// </summary>
    public static bool IsLowOrder(ReadOnlySpan<byte> publicKey)
    {
        if (publicKey.Length != KeySize) throw new ArgumentException("32 bytes expected.", nameof(publicKey));
        bool any = false;
        foreach (var bad in LowOrderPoints)
        {
            int diff = 0;
            for (int i = 0; i < 31; i++) diff |= publicKey[i] ^ bad[i];
            diff |= (publicKey[31] & 0x7f) ^ bad[31];
            any |= diff == 0;
        }
        return any;
    }

    private static readonly byte[][] LowOrderPoints =
    [
        new byte[32],                                                    // 0 (order 4)
        [0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],   // 1 (order 1)
        [0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,    // order 8
         0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00],
        [0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,    // order 8
         0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57],
        PMinus(1),                                                       // p-1 (order 2)
        PMinus(0),                                                       // p (= 0, order 4)
        PMinus(-1),                                                      // p+1 (= 1, order 1)
    ];

    /// <summary>2^255 - 19 - d, little-endian (d in -1..1).</summary>
    private static byte[] PMinus(int d)
    {
        var b = new byte[32];
        b.AsSpan().Fill(0xff);
        b[0] = (byte)(0xed - d);
        b[31] = 0x7f;
        return b;
    }
}
