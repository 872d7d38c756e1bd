using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using WgEngine.Crypto;

namespace WgEngine.Bench;

/// <summary>
/// The pieces of a responder handshake, to see where its time goes (docs/performance.md, "Handshake
/// flood"): per handshake the responder does 3 variable-base X25519 (its static with the initiator's
/// ephemeral, its ephemeral with the initiator's ephemeral and static), 1 fixed-base (its ephemeral
/// public key), 1 random key, 21 HMAC-BLAKE2s inside KDF1/2/3 (2 KDF1 + 2 KDF2 reading, 3 KDF1 +
/// 1 KDF3 answering, 1 KDF2 for the keys), 6 HASH, 2 AEAD opens (48 and 28 bytes) and 1 seal (0 bytes).
/// </summary>
[MemoryDiagnoser]
public class HandshakePartsBenchmarks
{
    private readonly byte[] _priv = new byte[32], _pub = new byte[32], _out = new byte[32], _t2 = new byte[32], _t3 = new byte[32];
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32), _h = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _sealed48 = new byte[48], _sealed16 = new byte[16], _plain = new byte[32];

    [GlobalSetup]
    public void Setup()
    {
        X25519.GeneratePrivateKey(_priv);
        var other = new byte[32];
        X25519.GeneratePrivateKey(other);
        X25519.PublicKey(other, _pub);
        ChaChaPoly.Seal(_key, 0, _plain, _h, _sealed48);
    }

    [Benchmark(Description = "X25519 variable base (libsodium)")]
    public bool X25519Shared() => X25519.SharedSecret(_priv, _pub, _out);

    [Benchmark(Description = "X25519 fixed base (libsodium)")]
    public void X25519Public() => X25519.PublicKey(_priv, _out);

    [Benchmark(Description = "random private key (32 B)")]
    public void GenerateKey() => X25519.GeneratePrivateKey(_out);

    [Benchmark(Description = "KDF1 (2 HMAC)")]
    public void Kdf1() => Kdf.Kdf1(_key, _h, _out);

    [Benchmark(Description = "KDF2 (3 HMAC)")]
    public void Kdf2() => Kdf.Kdf2(_key, _h, _out, _t2);

    [Benchmark(Description = "KDF3 (4 HMAC)")]
    public void Kdf3() => Kdf.Kdf3(_key, _h, _out, _t2, _t3);

    [Benchmark(Description = "HASH(h || 32 B)")]
    public void MixHash() => Blake2s.Hash(_h, _key, _out);

    [Benchmark(Description = "AEAD open, 32 B + tag")]
    public bool Open48() => ChaChaPoly.Open(_key, 0, _sealed48, _h, _plain);

    [Benchmark(Description = "AEAD seal, 0 B + tag")]
    public void Seal0() => ChaChaPoly.Seal(_key, 0, ReadOnlySpan<byte>.Empty, _h, _sealed16);
}
