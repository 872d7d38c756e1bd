using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace WgEngine.Crypto;

/// <summary>
/// ChaCha20-Poly1305 through OpenSSL's EVP interface with one cipher context per thread, reused for every
/// packet (only the key and nonce are set per call). The BCL's ChaCha20Poly1305 goes through the same
/// library but creates and frees a context per call and throws on a bad tag; libsodium's portable code is
/// slower per byte. Which of them wins at which size on this machine is measured by bench/WgEngine.Bench
/// AeadBenchmarks and decided in <see cref="TransportAead"/>. Written here because nothing on NuGet exposes
/// EVP with context reuse; the constants are OpenSSL's (include/openssl/evp.h).
/// Unavailable (no libcrypto.so.3, an OpenSSL without ChaCha20-Poly1305): <see cref="IsAvailable"/> is
/// false and the callers keep libsodium.
/// </summary>
internal static unsafe partial class OpenSslAead
{
    private const string Lib = "libcrypto.so.3";
    private const int EVP_CTRL_AEAD_GET_TAG = 0x10;
    private const int EVP_CTRL_AEAD_SET_TAG = 0x11;

    [LibraryImport(Lib)] private static partial nint EVP_CIPHER_CTX_new();
    [LibraryImport(Lib)] private static partial void EVP_CIPHER_CTX_free(nint ctx);
    [LibraryImport(Lib)] private static partial nint EVP_chacha20_poly1305();
    [LibraryImport(Lib)] private static partial int EVP_EncryptInit_ex(nint ctx, nint cipher, nint engine, byte* key, byte* iv);
    [LibraryImport(Lib)] private static partial int EVP_EncryptUpdate(nint ctx, byte* output, int* outputLength, byte* input, int inputLength);
    [LibraryImport(Lib)] private static partial int EVP_EncryptFinal_ex(nint ctx, byte* output, int* outputLength);
    [LibraryImport(Lib)] private static partial int EVP_DecryptInit_ex(nint ctx, nint cipher, nint engine, byte* key, byte* iv);
    [LibraryImport(Lib)] private static partial int EVP_DecryptUpdate(nint ctx, byte* output, int* outputLength, byte* input, int inputLength);
    [LibraryImport(Lib)] private static partial int EVP_DecryptFinal_ex(nint ctx, byte* output, int* outputLength);
    [LibraryImport(Lib)] private static partial int EVP_CIPHER_CTX_ctrl(nint ctx, int type, int arg, byte* ptr);

    private static readonly nint s_cipher = LoadCipher();

    /// <summary>libcrypto with ChaCha20-Poly1305 is there (checked once, with a self-test).</summary>
    public static bool IsAvailable { get; } = s_cipher != 0 && SelfTest();

    /// <summary>One thread's two contexts; freed by the finalizer when the thread is gone.</summary>
    private sealed class ThreadContexts
    {
        public readonly nint Encrypt = CreateContext(encrypt: true);
        public readonly nint Decrypt = CreateContext(encrypt: false);
        ~ThreadContexts()
        {
            if (Encrypt != 0) EVP_CIPHER_CTX_free(Encrypt);
            if (Decrypt != 0) EVP_CIPHER_CTX_free(Decrypt);
        }
    }

    [ThreadStatic] private static ThreadContexts? t_contexts;

    private static ThreadContexts Contexts => t_contexts ??= new ThreadContexts();

    private static nint LoadCipher()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad(Lib, typeof(OpenSslAead).Assembly, null, out _)) return 0;
        try { return EVP_chacha20_poly1305(); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return 0; }
    }

    private static nint CreateContext(bool encrypt)
    {
        nint ctx = EVP_CIPHER_CTX_new();
        if (ctx == 0) throw new CryptographicException("EVP_CIPHER_CTX_new failed.");
        int ok = encrypt ? EVP_EncryptInit_ex(ctx, s_cipher, 0, null, null) : EVP_DecryptInit_ex(ctx, s_cipher, 0, null, null);
        if (ok != 1) { EVP_CIPHER_CTX_free(ctx); throw new CryptographicException("EVP init of ChaCha20-Poly1305 failed."); }
        return ctx;
    }

    /// <summary>RFC 8439 seal with a 12-byte nonce and no AAD: destination = ciphertext || tag (plaintext.Length + 16);
    /// in place allowed.</summary>
    public static void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce12, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        if (key.Length != ChaChaPoly.KeySize || nonce12.Length != ChaChaPoly.NonceSize || destination.Length < plaintext.Length + ChaChaPoly.TagSize)
            throw new ArgumentException("32-byte key, 12-byte nonce and room for the tag expected.");
        nint ctx = Contexts.Encrypt;
        int n = 0, f = 0;
        fixed (byte* k = key) fixed (byte* iv = nonce12) fixed (byte* m = plaintext) fixed (byte* c = destination)
        {
            if (EVP_EncryptInit_ex(ctx, 0, 0, k, iv) != 1
                || (plaintext.Length > 0 && EVP_EncryptUpdate(ctx, c, &n, m, plaintext.Length) != 1)
                || EVP_EncryptFinal_ex(ctx, c + n, &f) != 1
                || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, ChaChaPoly.TagSize, c + plaintext.Length) != 1)
                throw new CryptographicException("EVP ChaCha20-Poly1305 encryption failed.");
        }
    }

    /// <summary>RFC 8439 open (no AAD): false when the tag does not verify, never an exception for that. OpenSSL
    /// writes the plaintext before it checks the tag: on false, <paramref name="destination"/> holds bytes that
    /// must not be used (the receive path drops the buffer).</summary>
    public static bool Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce12, ReadOnlySpan<byte> ciphertextAndTag, Span<byte> destination)
    {
        if (key.Length != ChaChaPoly.KeySize || nonce12.Length != ChaChaPoly.NonceSize) throw new ArgumentException("32-byte key and 12-byte nonce expected.");
        if (ciphertextAndTag.Length < ChaChaPoly.TagSize) return false;
        int length = ciphertextAndTag.Length - ChaChaPoly.TagSize;
        if (destination.Length < length) throw new ArgumentException("Destination too small.", nameof(destination));
        nint ctx = Contexts.Decrypt;
        int n = 0, f = 0;
        fixed (byte* k = key) fixed (byte* iv = nonce12) fixed (byte* c = ciphertextAndTag) fixed (byte* m = destination)
        {
            if (EVP_DecryptInit_ex(ctx, 0, 0, k, iv) != 1) return false;
            if (length > 0 && EVP_DecryptUpdate(ctx, m, &n, c, length) != 1) return false;
            if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, ChaChaPoly.TagSize, c + length) != 1) return false;
            return EVP_DecryptFinal_ex(ctx, m + n, &f) == 1;
        }
    }

    /// <summary>A known-answer check against libsodium's implementation, and a forged tag refused.</summary>
    private static bool SelfTest()
    {
        try
        {
            Span<byte> key = stackalloc byte[32], nonce = stackalloc byte[12], plain = stackalloc byte[64];
            Span<byte> ours = stackalloc byte[80], sodium = stackalloc byte[80], back = stackalloc byte[64];
            for (int i = 0; i < 32; i++) key[i] = (byte)(0x80 + i);
            nonce[0] = 7; nonce[4] = 0x40;
            for (int i = 0; i < 64; i++) plain[i] = (byte)i;
            Seal(key, nonce, plain, ours);
            ChaChaPoly.SealRaw(key, nonce, plain, ReadOnlySpan<byte>.Empty, sodium);
            if (!ours.SequenceEqual(sodium) || !Open(key, nonce, ours, back) || !back.SequenceEqual(plain)) return false;
            ours[^1] ^= 1;
            return !Open(key, nonce, ours, back);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or CryptographicException) { return false; }
    }
}
