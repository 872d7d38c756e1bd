using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using WgEngine.Crypto;

namespace WgEngine.Bench;

/// <summary>
/// BLAKE2s as the handshake uses it: HASH over 32 bytes (H = HASH(H || key)), over a 148-byte
/// initiation, MAC1 over an initiation's first 116 bytes, and a KDF2 step.
/// </summary>
[MemoryDiagnoser]
public class Blake2sBenchmarks
{
    private readonly byte[] _in32 = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _in148 = RandomNumberGenerator.GetBytes(148);
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _out32 = new byte[32];
    private readonly byte[] _out16 = new byte[16];
    private readonly byte[] _t2 = new byte[32];

    [Benchmark]
    public void Hash32() => Blake2s.Hash(_in32, _out32);

    [Benchmark]
    public void Hash148() => Blake2s.Hash(_in148, _out32);

    [Benchmark]
    public void Mac116() => Blake2s.Mac(_key, _in148.AsSpan(0, 116), _out16);

    [Benchmark]
    public void Kdf2() => Kdf.Kdf2(_key, _in32, _out32, _t2);
}
