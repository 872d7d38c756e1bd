namespace WgEngine.Crypto;

/// <summary>Curve25519 Diffie-Hellman (RFC 7748) through libsodium.</summary>
public static unsafe class X25519
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
}
