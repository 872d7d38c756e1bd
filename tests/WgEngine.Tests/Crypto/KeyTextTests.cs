using WgEngine.Crypto;

namespace WgEngine.Tests.Crypto;

public class KeyTextTests
{
    private static string B64(int byteCount, byte fill = 0x5a) => Convert.ToBase64String(Enumerable.Repeat(fill, byteCount).ToArray());

    public static TheoryData<string?> BadKeyTexts()
    {
        string good = B64(32);
        return new TheoryData<string?>
        {
            null,
            "",
            good[..43],               // 43 characters
            good + "A",               // 45 characters
            good[..20] + "!" + good[21..], // not base64
            B64(31),                  // decodes to 31 bytes
            B64(33),                  // decodes to 33 bytes
        };
    }

    [Theory]
    [MemberData(nameof(BadKeyTexts))]
    public void BadPublicKeyTextIsRejectedWithoutEchoingIt(string? text)
    {
        Assert.False(WgKey.TryParse(text, out _));
        var ex = Assert.Throws<FormatException>(() => WgKey.Parse(text));
        if (!string.IsNullOrEmpty(text)) Assert.DoesNotContain(text, ex.Message);
    }

    [Theory]
    [MemberData(nameof(BadKeyTexts))]
    public void BadPrivateKeyTextIsRejectedWithoutEchoingIt(string? text)
    {
        Assert.False(WgPrivateKey.TryParse(text, out var k));
        Assert.Null(k);
        var ex = Assert.Throws<FormatException>(() => WgPrivateKey.Parse(text));
        if (!string.IsNullOrEmpty(text)) Assert.DoesNotContain(text, ex.Message);
    }

    [Theory]
    [InlineData(31)]
    [InlineData(33)]
    public void WrongByteCountsAreRejected(int n)
    {
        Assert.Throws<ArgumentException>(() => new WgKey(new byte[n]));
        Assert.Throws<ArgumentException>(() => WgPrivateKey.FromBytes(new byte[n]));
    }

    [Fact]
    public void PrivateKeyNeverAppearsInToString()
    {
        using var key = WgPrivateKey.Generate();
        string secretB64 = key.ExportBase64();
        string secretHex = key.ExportHex();
        string shown = key.ToString();
        Assert.DoesNotContain(secretB64, shown);
        Assert.DoesNotContain(secretHex, shown, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(secretB64[..16], shown);
        Assert.Contains(key.PublicKey.ToBase64(), shown);
    }

    [Fact]
    public void PrivateKeyRoundTripsAndDerivesTheRfc7748PublicKey()
    {
        // RFC 7748 section 6.1 Alice. Her scalar is not clamped (first byte 0x77); the stored key is,
        // which leaves the X25519 result (and so the public key) unchanged.
        byte[] priv = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        using var key = WgPrivateKey.Parse(Convert.ToBase64String(priv));
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", key.PublicKey.ToHex());
        Assert.Equal("70076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c6a", key.ExportHex());
        Assert.Equal(key.PublicKey, WgKey.Parse(key.PublicKey.ToBase64()));
        Assert.Equal(key.PublicKey, WgKey.FromHex(key.PublicKey.ToHex()));
    }
}
