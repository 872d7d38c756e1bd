using System.Buffers.Binary;

namespace WgEngine.Crypto;

/// <summary>
/// ChaCha20-Poly1305 (RFC 8439) with WireGuard's nonce: 4 zero bytes then a 64-bit little-endian counter,
/// and XChaCha20-Poly1305 with a 24-byte nonce for cookie replies. Output layout is ciphertext || 16-byte tag.
/// In-place operation (plaintext and ciphertext the same memory) is allowed.
/// </summary>
internal static unsafe class ChaChaPoly
{
    public const int KeySize = 32;
    public const int TagSize = 16;
    public const int XNonceSize = 24;

    public const int NonceSize = 12;

    /// <summary>Encrypts plaintext into destination (length plaintext.Length + 16).</summary>
    public static void Seal(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> aad, Span<byte> destination)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(counter, nonce);
        SealRaw(key, nonce, plaintext, aad, destination);
    }

    /// <summary>Decrypts ciphertext||tag into destination (length ciphertext.Length - 16). False when the tag does not verify.</summary>
    public static bool Open(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> aad, Span<byte> destination)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(counter, nonce);
        return OpenRaw(key, nonce, ciphertext, aad, destination);
    }

    /// <summary>WireGuard's nonce: 32 zero bits then the counter as 64-bit little-endian.</summary>
    private static void WriteNonce(ulong counter, Span<byte> nonce12)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(nonce12, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(nonce12[4..], counter);
    }

    /// <summary>RFC 8439 AEAD with an arbitrary 12-byte nonce (tests against the RFC's vectors use this).</summary>
    internal static void SealRaw(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce12, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> aad, Span<byte> destination)
    {
        if (key.Length != KeySize) throw new ArgumentException("32-byte key expected.", nameof(key));
        if (nonce12.Length != NonceSize) throw new ArgumentException("12-byte nonce expected.", nameof(nonce12));
        if (destination.Length < plaintext.Length + TagSize) throw new ArgumentException("Destination too small.", nameof(destination));
        fixed (byte* k = key) fixed (byte* n = nonce12) fixed (byte* m = plaintext) fixed (byte* ad = aad) fixed (byte* c = destination)
        {
            _ = Sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(   // always returns 0 (libsodium docs)
                c, c + plaintext.Length, null, m, (ulong)plaintext.Length, ad, (ulong)aad.Length, null, n, k);
        }
    }

    internal static bool OpenRaw(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce12, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> aad, Span<byte> destination)
    {
        if (key.Length != KeySize) throw new ArgumentException("32-byte key expected.", nameof(key));
        if (nonce12.Length != NonceSize) throw new ArgumentException("12-byte nonce expected.", nameof(nonce12));
        if (ciphertext.Length < TagSize) return false;
        int len = ciphertext.Length - TagSize;
        if (destination.Length < len) throw new ArgumentException("Destination too small.", nameof(destination));
        fixed (byte* k = key) fixed (byte* n = nonce12) fixed (byte* c = ciphertext) fixed (byte* ad = aad) fixed (byte* m = destination)
        {
            return Sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(m, null, c, (ulong)len, c + len, ad, (ulong)aad.Length, n, k) == 0;
        }
    }

    public static void XSeal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce24, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> aad, Span<byte> destination)
    {
        if (key.Length != KeySize || nonce24.Length != XNonceSize) throw new ArgumentException("32-byte key and 24-byte nonce expected.");
        if (destination.Length < plaintext.Length + TagSize) throw new ArgumentException("Destination too small.", nameof(destination));
        fixed (byte* k = key) fixed (byte* n = nonce24) fixed (byte* m = plaintext) fixed (byte* ad = aad) fixed (byte* c = destination)
        {
            _ = Sodium.crypto_aead_xchacha20poly1305_ietf_encrypt_detached(  // always returns 0 (libsodium docs)
                c, c + plaintext.Length, null, m, (ulong)plaintext.Length, ad, (ulong)aad.Length, null, n, k);
        }
    }

    public static bool XOpen(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce24, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> aad, Span<byte> destination)
    {
        if (key.Length != KeySize || nonce24.Length != XNonceSize) throw new ArgumentException("32-byte key and 24-byte nonce expected.");
        if (ciphertext.Length < TagSize) return false;
        int len = ciphertext.Length - TagSize;
        if (destination.Length < len) throw new ArgumentException("Destination too small.", nameof(destination));
        fixed (byte* k = key) fixed (byte* n = nonce24) fixed (byte* c = ciphertext) fixed (byte* ad = aad) fixed (byte* m = destination)
        {
            return Sodium.crypto_aead_xchacha20poly1305_ietf_decrypt_detached(m, null, c, (ulong)len, c + len, ad, (ulong)aad.Length, n, k) == 0;
        }
    }
}
