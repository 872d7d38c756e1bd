using System.Text.Json;
using WgEngine.Crypto;
using static WgEngine.Tests.Crypto.CryptoTestUtil;

namespace WgEngine.Tests.Crypto;

public class Blake2sTests
{
    private sealed record Kat(string hash, string @in, string key, string @out);

    private static List<Kat> LoadKats()
    {
        string path = Path.Combine(RepoRoot(), "tests", "vectors", "blake2s-kat.json");
        return JsonSerializer.Deserialize<List<Kat>>(File.ReadAllText(path))!;
    }

    [Fact]
    public void AllPublishedKnownAnswersMatch()
    {
        // tests/vectors/blake2s-kat.json: the reference BLAKE2 repository's blake2s-kat (256 unkeyed + 256 keyed).
        var kats = LoadKats();
        Assert.Equal(512, kats.Count);
        var actual = new byte[32];
        for (int i = 0; i < kats.Count; i++)
        {
            var k = kats[i];
            Assert.Equal("blake2s", k.hash);
            byte[] input = Hex(k.@in), key = Hex(k.key);
            var h = new Blake2s(32, key);
            h.Update(input);
            h.Finish(actual);
            if (ToHex(actual) != k.@out)
                Assert.Fail($"KAT {i} (in {input.Length} bytes, key {key.Length} bytes): expected {k.@out}, got {ToHex(actual)}");
        }
    }

    [Fact]
    public void StaticHashMatchesUnkeyedKats()
    {
        var kats = LoadKats().Where(k => k.key.Length == 0).ToList();
        Assert.Equal(256, kats.Count);
        var actual = new byte[32];
        foreach (var k in kats)
        {
            Blake2s.Hash(Hex(k.@in), actual);
            Assert.Equal(k.@out, ToHex(actual));
        }
    }

    [Fact]
    public void IncrementalUpdatesOnRandomSplitsEqualOneShot()
    {
        var rng = new Random(7693);
        var whole = new byte[32];
        var parts = new byte[32];
        for (int trial = 0; trial < 300; trial++)
        {
            var data = new byte[rng.Next(0, 700)];
            rng.NextBytes(data);
            var key = new byte[rng.Next(0, 33)];
            rng.NextBytes(key);

            var a = new Blake2s(32, key);
            a.Update(data);
            a.Finish(whole);

            var b = new Blake2s(32, key);
            int pos = 0;
            while (pos < data.Length)
            {
                // Mix empty, tiny, exactly-one-block and multi-block pieces.
                int n = Math.Min(data.Length - pos, rng.Next(4) switch { 0 => 0, 1 => rng.Next(1, 8), 2 => 64, _ => rng.Next(1, 200) });
                b.Update(data.AsSpan(pos, n));
                pos += n;
            }
            b.Finish(parts);
            Assert.True(whole.AsSpan().SequenceEqual(parts), $"trial {trial}: {data.Length} bytes, key {key.Length}");
        }
    }

    [Fact]
    public void TwoPartHashEqualsHashOfConcatenationAndMayAliasOutput()
    {
        var rng = new Random(1);
        var a = new byte[32]; var b = new byte[148];
        rng.NextBytes(a); rng.NextBytes(b);
        var expected = new byte[32];
        Blake2s.Hash([.. a, .. b], expected);

        var actual = new byte[32];
        Blake2s.Hash(a, b, actual);
        Assert.Equal(expected, actual);

        // H = HASH(H || x) is the Noise pattern: output aliasing the first input.
        Blake2s.Hash(a, b, a);
        Assert.Equal(expected, a);
    }

    [Fact]
    public void MacIsKeyedBlake2sWith16ByteOutput()
    {
        // Expected values computed with CPython's hashlib.blake2s(data, key=key, digest_size=16).
        var mac = new byte[16];
        byte[] key = [.. Enumerable.Range(0, 32).Select(i => (byte)i)];
        byte[] msg = [.. Enumerable.Range(0, 148).Select(i => (byte)i)];
        Blake2s.Mac(key, msg, mac);
        Assert.Equal("33bd6c20ca2a7ab916d6e98003c6c5f8", ToHex(mac));

        Blake2s.Mac(Enumerable.Repeat((byte)'k', 32).ToArray(), [], mac);
        Assert.Equal("9881f5423279891d5742261a168c1aa2", ToHex(mac));
    }

    [Fact]
    public void OtherOutputLengthsFollowTheParameterBlock()
    {
        // CPython: hashlib.blake2s(bytes(range(256)), digest_size=20).
        var h = new Blake2s(20);
        h.Update([.. Enumerable.Range(0, 256).Select(i => (byte)i)]);
        var out20 = new byte[20];
        h.Finish(out20);
        Assert.Equal("aa569bdc981775f2b36883b79b8d48b19b2d3505", ToHex(out20));
    }

    [Fact]
    public void DefaultInstanceIsAnUnkeyed32ByteHasher()
    {
        var expected = new byte[32];
        Blake2s.Hash("abc"u8, expected);
        var h = new Blake2s();
        h.Update("abc"u8);
        var actual = new byte[32];
        h.Finish(actual);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void NoiseInitialChainingKeyAndHash()
    {
        // WireGuard whitepaper section 5.4 / PROTOCOL.md: C0 = HASH(CONSTRUCTION), H0 = HASH(C0 || IDENTIFIER).
        var c0 = new byte[32];
        Blake2s.Hash("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"u8, c0);
        Assert.Equal("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36", ToHex(c0));
        var h0 = new byte[32];
        Blake2s.Hash(c0, "WireGuard v1 zx2c4 Jason@zx2c4.com"u8, h0);
        Assert.Equal("2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3", ToHex(h0));
    }

    [Fact]
    public void MisuseIsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Blake2s(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Blake2s(33));
        Assert.Throws<ArgumentException>(() => new Blake2s(32, new byte[33]));
        Assert.Throws<ArgumentException>(() => Blake2s.Hash([], new byte[31]));
        Assert.Throws<ArgumentException>(() => Blake2s.Mac(new byte[32], [], new byte[32]));
        Assert.Throws<ArgumentException>(() => { var h = new Blake2s(16); h.Finish(new byte[32]); });
        Assert.Throws<InvalidOperationException>(() =>
        {
            var h = new Blake2s(32);
            h.Finish(new byte[32]);
            h.Update([1]);
        });
    }
}
