using System.Buffers.Binary;

namespace WgEngine.Crypto;

/// <summary>
/// The transport messages' ChaCha20-Poly1305 (WireGuard's nonce, no AAD), through whichever implementation is
/// faster for the size: libsodium for small packets, OpenSSL's EVP with a reused per-thread context
/// (<see cref="OpenSslAead"/>) for large ones. The thresholds come from bench/WgEngine.Bench AeadBenchmarks on
/// this machine class (docs/performance.md): EVP seals faster from ~640 B and opens faster from ~256 B, while
/// libsodium rejects a forged small packet for about half of what EVP spends (it checks the tag before it
/// decrypts; EVP decrypts first), so opening switches only at 512 B, where both drop a forgery at about the
/// same cost. Both fail a bad tag with a return value, never an exception. Without a usable libcrypto
/// everything stays with libsodium. Thread-safe, nothing allocated per call.
/// </summary>
internal static class TransportAead
{
    /// <summary>Plaintexts of at least this many bytes are sealed with EVP.</summary>
    internal const int EvpSealThreshold = 640;
    /// <summary>Ciphertexts (without the tag) of at least this many bytes are opened with EVP.</summary>
    internal const int EvpOpenThreshold = 512;

    private static readonly bool s_evp = OpenSslAead.IsAvailable;

    /// <summary>Which implementation is in use for large packets ("openssl-evp" or "libsodium").</summary>
    public static string LargePacketBackend => s_evp ? "openssl-evp" : "libsodium";

    /// <summary>Encrypts in place or into destination (plaintext.Length + 16 bytes: ciphertext then tag).</summary>
    public static void Seal(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        if (!s_evp || plaintext.Length < EvpSealThreshold)
        {
            ChaChaPoly.Seal(key, counter, plaintext, ReadOnlySpan<byte>.Empty, destination);
            return;
        }
        Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
        WriteNonce(counter, nonce);
        OpenSslAead.Seal(key, nonce, plaintext, destination);
    }

    /// <summary>Decrypts ciphertext||tag into destination (in place allowed). False when the tag does not verify;
    /// then the destination's content is undefined and must be dropped.</summary>
    public static bool Open(ReadOnlySpan<byte> key, ulong counter, ReadOnlySpan<byte> ciphertextAndTag, Span<byte> destination)
    {
        if (!s_evp || ciphertextAndTag.Length - ChaChaPoly.TagSize < EvpOpenThreshold)
            return ChaChaPoly.Open(key, counter, ciphertextAndTag, ReadOnlySpan<byte>.Empty, destination);
        Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
        WriteNonce(counter, nonce);
        return OpenSslAead.Open(key, nonce, ciphertextAndTag, destination);
    }

    /// <summary>WireGuard's nonce (whitepaper §5.4.6): 32 zero bits, then the counter as 64-bit little-endian.</summary>
    private static void WriteNonce(ulong counter, Span<byte> nonce12)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(nonce12, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(nonce12[4..], counter);
    }
}
