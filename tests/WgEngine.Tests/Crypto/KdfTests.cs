using WgEngine.Crypto;
using static WgEngine.Tests.Crypto.CryptoTestUtil;

namespace WgEngine.Tests.Crypto;

public class KdfTests
{
    // wireguard-go device/kdf_test.go (its t0, t1, t2 are the whitepaper's KDF outputs t1, t2, t3).
    public static TheoryData<string, string, string, string, string> WireGuardGoVectors => new()
    {
        { "746573742d6b6579", "746573742d696e707574",
          "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
          "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
          "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24" },
        { "776972656775617264", "776972656775617264",
          "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
          "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
          "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160" },
        { "", "",
          "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
          "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
          "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e" },
    };

    [Theory]
    [MemberData(nameof(WireGuardGoVectors))]
    public void KdfMatchesWireGuardGo(string key, string input, string e1, string e2, string e3)
    {
        byte[] k = Hex(key), x = Hex(input);
        byte[] t1 = new byte[32], t2 = new byte[32], t3 = new byte[32];

        Kdf.Kdf3(k, x, t1, t2, t3);
        Assert.Equal((e1, e2, e3), (ToHex(t1), ToHex(t2), ToHex(t3)));

        Array.Clear(t1); Array.Clear(t2);
        Kdf.Kdf2(k, x, t1, t2);
        Assert.Equal((e1, e2), (ToHex(t1), ToHex(t2)));

        Array.Clear(t1);
        Kdf.Kdf1(k, x, t1);
        Assert.Equal(e1, ToHex(t1));
    }

    [Theory]
    // Expected values computed with CPython: hmac.new(key, msg, hashlib.blake2s) (block size 64).
    [InlineData(0, 0, "eaf4bb25938f4d20e72656bbbc7a9bf63c0c18537333c35bdb67db1402661acd")]
    [InlineData(64, 3, "3a0ef09eac123871fb79852ec512086d013abff437bd68ca03630932bd6ba81f")]
    [InlineData(32, 200, "543eec9b22646365ef782d72dae137cc761d018005f8d33d0f20bfbd01e62974")]
    public void HmacMatchesReference(int keyLength, int inputLength, string expected)
    {
        byte[] key = [.. Enumerable.Range(0, keyLength).Select(i => (byte)i)];
        // The 3-byte case is "abc"; the others count up from zero.
        byte[] input = inputLength == 3 ? "abc"u8.ToArray() : [.. Enumerable.Range(0, inputLength).Select(i => (byte)i)];
        var mac = new byte[32];
        Kdf.Hmac(key, input, mac);
        Assert.Equal(expected, ToHex(mac));
    }

    [Fact]
    public void OutputsMayAliasTheChainingKey()
    {
        var rng = new Random(5);
        var c = new byte[32]; var x = new byte[32];
        rng.NextBytes(c); rng.NextBytes(x);
        byte[] e1 = new byte[32], e2 = new byte[32], e3 = new byte[32];
        Kdf.Kdf3(c, x, e1, e2, e3);

        // (C, k) = KDF2(C, x)
        var c2 = (byte[])c.Clone(); var k = new byte[32];
        Kdf.Kdf2(c2, x, c2, k);
        Assert.Equal(e1, c2);
        Assert.Equal(e2, k);

        // C = KDF1(C, x), and input aliasing too.
        var c1 = (byte[])c.Clone();
        Kdf.Kdf1(c1, x, c1);
        Assert.Equal(e1, c1);
        var x1 = (byte[])x.Clone();
        Kdf.Kdf1(c, x1, x1);
        Assert.Equal(e1, x1);

        // (C, t, k) = KDF3(C, psk); also with the key aliasing the last output.
        var c3 = (byte[])c.Clone(); byte[] t = new byte[32], k3 = new byte[32];
        Kdf.Kdf3(c3, x, c3, t, k3);
        Assert.Equal(e1, c3); Assert.Equal(e2, t); Assert.Equal(e3, k3);
        var c4 = (byte[])c.Clone(); byte[] u1 = new byte[32], u2 = new byte[32];
        Kdf.Kdf3(c4, x, u1, u2, c4);
        Assert.Equal(e1, u1); Assert.Equal(e2, u2); Assert.Equal(e3, c4);

        // HMAC output aliasing its key.
        var hk = (byte[])c.Clone(); var expectedMac = new byte[32];
        Kdf.Hmac(c, x, expectedMac);
        Kdf.Hmac(hk, x, hk);
        Assert.Equal(expectedMac, hk);
    }

    [Fact]
    public void WrongOutputSizesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => Kdf.Kdf1(new byte[32], [], new byte[16]));
        Assert.Throws<ArgumentException>(() => Kdf.Kdf2(new byte[32], [], new byte[32], new byte[33]));
        Assert.Throws<ArgumentException>(() => Kdf.Hmac(new byte[32], [], new byte[31]));
    }
}
