using WgEngine.Crypto;
using static WgEngine.Tests.Crypto.CryptoTestUtil;

namespace WgEngine.Tests.Crypto;

public class X25519Tests
{
    [Theory]
    // RFC 7748 section 5.2 (the second u-coordinate has its top bit set, which must be ignored).
    [InlineData("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]
    [InlineData("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
                "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")]
    public void Rfc7748Section52(string scalar, string u, string expected)
    {
        var shared = new byte[32];
        Assert.True(X25519.SharedSecret(Hex(scalar), Hex(u), shared));
        Assert.Equal(expected, ToHex(shared));
    }

    [Fact]
    public void Rfc7748Section61DiffieHellman()
    {
        byte[] alicePriv = Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        byte[] bobPriv = Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        byte[] alicePub = new byte[32], bobPub = new byte[32];
        X25519.PublicKey(alicePriv, alicePub);
        X25519.PublicKey(bobPriv, bobPub);
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", ToHex(alicePub));
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", ToHex(bobPub));

        byte[] k1 = new byte[32], k2 = new byte[32];
        Assert.True(X25519.SharedSecret(alicePriv, bobPub, k1));
        Assert.True(X25519.SharedSecret(bobPriv, alicePub, k2));
        Assert.Equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", ToHex(k1));
        Assert.Equal(k1, k2);
    }

    [Theory]
    // Low-order points: u = 0, u = 1, and a point of order 8 (listed in libsodium's and the kernel's blacklists).
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("0100000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")]
    public void AllZeroResultIsRejected(string lowOrderPoint)
    {
        var priv = new byte[32];
        X25519.GeneratePrivateKey(priv);
        var shared = new byte[32];
        Assert.False(X25519.SharedSecret(priv, Hex(lowOrderPoint), shared));
        Assert.All(shared, b => Assert.Equal(0, b));
    }

    [Fact]
    public void GeneratedKeysAreClampedAndAgree()
    {
        byte[] a = new byte[32], b = new byte[32];
        X25519.GeneratePrivateKey(a);
        X25519.GeneratePrivateKey(b);
        Assert.NotEqual(a, b);
        Assert.Equal(0, a[0] & 7);
        Assert.Equal(64, a[31] & 0xc0);
        byte[] pa = new byte[32], pb = new byte[32], s1 = new byte[32], s2 = new byte[32];
        X25519.PublicKey(a, pa);
        X25519.PublicKey(b, pb);
        Assert.True(X25519.SharedSecret(a, pb, s1));
        Assert.True(X25519.SharedSecret(b, pa, s2));
        Assert.Equal(s1, s2);
    }
}
