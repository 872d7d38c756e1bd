using System.Buffers.Binary;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using WgEngine.Crypto;

namespace WgEngine.Bench;

/// <summary>
/// Transport-data AEAD: our libsodium path (ChaChaPoly) against the BCL's ChaCha20Poly1305 (OpenSSL on Linux),
/// with one BCL instance reused as a transport keypair would hold it, and OpenSSL's EVP called directly with one
/// context per thread reused (OpenSslAead); opening a forged packet too, since that is what a flood costs. 64 B is a small packet, 1420 B a full MTU one.
/// </summary>
[MemoryDiagnoser]
public class AeadBenchmarks
{
    [Params(64, 256, 640, 1420)]
    public int Size;

    private readonly byte[] _key = new byte[32];
    private byte[] _plain = [];
    private byte[] _sealed = [];      // ciphertext || tag, for both backends (they must agree)
    private byte[] _out = [];
    private byte[] _forged = [];
    private static readonly byte[] Nonce = NonceBytes();
    private ChaCha20Poly1305 _bcl = null!;
    private const ulong Counter = 12345;

    [GlobalSetup]
    public void Setup()
    {
        RandomNumberGenerator.Fill(_key);
        _plain = RandomNumberGenerator.GetBytes(Size);
        _sealed = new byte[Size + 16];
        _out = new byte[Size + 16];
        _bcl = new ChaCha20Poly1305(_key);
        ChaChaPoly.Seal(_key, Counter, _plain, default, _sealed);

        // Sanity: both backends produce the same bytes, so we time the same work.
        var check = new byte[Size + 16];
        BclSeal(check);
        if (!check.AsSpan().SequenceEqual(_sealed)) throw new InvalidOperationException("Backends disagree.");
        OpenSslAead.Seal(_key, Nonce, _plain, check);
        if (!OpenSslAead.IsAvailable || !check.AsSpan().SequenceEqual(_sealed)) throw new InvalidOperationException("EVP disagrees or is missing.");
        _forged = (byte[])_sealed.Clone();
        _forged[^1] ^= 1;
    }

    [GlobalCleanup]
    public void Cleanup() => _bcl.Dispose();

    [Benchmark(Baseline = true)]
    public void SealSodium() => ChaChaPoly.Seal(_key, Counter, _plain, default, _out);

    [Benchmark]
    public void SealBcl() => BclSeal(_out);

    [Benchmark]
    public void SealEvp() => OpenSslAead.Seal(_key, Nonce, _plain, _out);

    [Benchmark]
    public bool OpenEvp() => OpenSslAead.Open(_key, Nonce, _sealed, _out);

    /// <summary>A forged packet (last tag byte flipped): what dropping it costs.</summary>
    [Benchmark]
    public bool OpenForgedSodium() => ChaChaPoly.Open(_key, Counter, _forged, default, _out);

    [Benchmark]
    public bool OpenForgedEvp() => OpenSslAead.Open(_key, Nonce, _forged, _out);

    [Benchmark]
    public bool OpenSodium() => ChaChaPoly.Open(_key, Counter, _sealed, default, _out);

    [Benchmark]
    public bool OpenBcl()
    {
        Span<byte> nonce = stackalloc byte[12];
        WriteNonce(nonce);
        try
        {
            _bcl.Decrypt(nonce, _sealed.AsSpan(0, Size), _sealed.AsSpan(Size, 16), _out.AsSpan(0, Size));
            return true;
        }
        catch (AuthenticationTagMismatchException) { return false; }
    }

    private void BclSeal(byte[] destination)
    {
        Span<byte> nonce = stackalloc byte[12];
        WriteNonce(nonce);
        _bcl.Encrypt(nonce, _plain, destination.AsSpan(0, Size), destination.AsSpan(Size, 16));
    }

    private static byte[] NonceBytes()
    {
        var n = new byte[12];
        WriteNonce(n);
        return n;
    }

    private static void WriteNonce(Span<byte> nonce)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(nonce, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], Counter);
    }
}
