using System.Runtime.InteropServices;

namespace WgEngine.Crypto;

/// <summary>
/// Direct calls into libsodium (the native library that the NSec.Cryptography package ships).
/// Stateless functions taking spans: thread-safe, nothing allocated per call.
/// </summary>
internal static unsafe partial class Sodium
{
    private const string Lib = "libsodium";

    static Sodium()
    {
        if (sodium_init() < 0) throw new InvalidOperationException("libsodium failed to initialise.");
    }

    /// <summary>Touches the type so that sodium_init has run before first use on a hot path.</summary>
    internal static void EnsureInitialized() { }

    [LibraryImport(Lib)] private static partial int sodium_init();
    [LibraryImport(Lib)] internal static partial void randombytes_buf(byte* buf, nuint size);
    [LibraryImport(Lib)] internal static partial int crypto_scalarmult_curve25519(byte* q, byte* n, byte* p);
    [LibraryImport(Lib)] internal static partial int crypto_scalarmult_curve25519_base(byte* q, byte* n);

    [LibraryImport(Lib)]
    internal static partial int crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        byte* c, byte* mac, ulong* maclen, byte* m, ulong mlen, byte* ad, ulong adlen, byte* nsec, byte* npub, byte* k);

    [LibraryImport(Lib)]
    internal static partial int crypto_aead_chacha20poly1305_ietf_decrypt_detached(
        byte* m, byte* nsec, byte* c, ulong clen, byte* mac, byte* ad, ulong adlen, byte* npub, byte* k);

    [LibraryImport(Lib)]
    internal static partial int crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        byte* c, byte* mac, ulong* maclen, byte* m, ulong mlen, byte* ad, ulong adlen, byte* nsec, byte* npub, byte* k);

    [LibraryImport(Lib)]
    internal static partial int crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
        byte* m, byte* nsec, byte* c, ulong clen, byte* mac, byte* ad, ulong adlen, byte* npub, byte* k);

    [LibraryImport(Lib)] internal static partial int sodium_memcmp(byte* a, byte* b, nuint len);

    public static void RandomBytes(Span<byte> buffer)
    {
        fixed (byte* p = buffer) randombytes_buf(p, (nuint)buffer.Length);
    }
}
