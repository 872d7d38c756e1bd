using System.Text;
using WgEngine.Crypto;
using static WgEngine.Tests.Crypto.CryptoTestUtil;

namespace WgEngine.Tests.Crypto;

public class AeadTests
{
    // RFC 8439 section 2.8.2 inputs (the XChaCha draft's A.3.1 reuses key, AAD and plaintext).
    private static readonly byte[] Key = Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    private static readonly byte[] Aad = Hex("50515253c0c1c2c3c4c5c6c7");
    private static readonly byte[] Plaintext = Encoding.ASCII.GetBytes(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");

    private const string RfcCiphertext =
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b" +
        "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
        "3ff4def08e4b7a9de576d26586cec64b6116";
    private const string RfcTag = "1ae10b594f09e26a7e902ecbd0600691";

    [Fact]
    public void Rfc8439AeadVectorThroughRawNonce()
    {
        // The RFC nonce 07000000||4041424344454647 is not of WireGuard's form, hence the internal raw path.
        byte[] nonce = Hex("070000004041424344454647");
        var sealedBox = new byte[Plaintext.Length + 16];
        ChaChaPoly.SealRaw(Key, nonce, Plaintext, Aad, sealedBox);
        Assert.Equal(RfcCiphertext + RfcTag, ToHex(sealedBox));

        var opened = new byte[Plaintext.Length];
        Assert.True(ChaChaPoly.OpenRaw(Key, nonce, sealedBox, Aad, opened));
        Assert.Equal(Plaintext, opened);
    }

    [Fact]
    public void CounterIsPlacedAsWireGuardNonce()
    {
        // Expected: CPython cryptography ChaCha20Poly1305 with nonce 00000000||4041424344454647,
        // i.e. counter 0x4746454443424140 little-endian after four zero bytes.
        const string expected =
            "a479cb54628946d6f4042a8e384ef4bd2fbc7330b8be55eb2d8dc18aaa51d66a8ec1f8d3619a258db0ac56956015b7b4" +
            "937e9b8e6aa957b3dc0214d803d77660aabc913092971da8f207171ce7843608162e2e759d8efc25d8d0936990af63c8" +
            "20ba87e8a955b5c8274ef7d10f6fafd046472dbf189b668bd430aef9147e99cb6c89";
        const ulong counter = 0x4746454443424140;
        var box = new byte[Plaintext.Length + 16];
        ChaChaPoly.Seal(Key, counter, Plaintext, Aad, box);
        Assert.Equal(expected, ToHex(box));

        var opened = new byte[Plaintext.Length];
        Assert.True(ChaChaPoly.Open(Key, counter, box, Aad, opened));
        Assert.Equal(Plaintext, opened);
        Assert.False(ChaChaPoly.Open(Key, counter + 1, box, Aad, opened));
    }

    [Fact]
    public void TamperedMessagesAreRejected()
    {
        var box = new byte[Plaintext.Length + 16];
        ChaChaPoly.Seal(Key, 9, Plaintext, Aad, box);
        var dest = new byte[Plaintext.Length];
        Assert.True(ChaChaPoly.Open(Key, 9, box, Aad, dest));

        foreach (int index in new[] { 0, Plaintext.Length - 1, Plaintext.Length, box.Length - 1 })
        {
            var bad = (byte[])box.Clone();
            bad[index] ^= 0x01;
            Assert.False(ChaChaPoly.Open(Key, 9, bad, Aad, dest), $"flip at {index} accepted");
        }
        var badAad = (byte[])Aad.Clone();
        badAad[0] ^= 0x80;
        Assert.False(ChaChaPoly.Open(Key, 9, box, badAad, dest));
        Assert.False(ChaChaPoly.Open(Key, 9, box.AsSpan(0, 15), Aad, dest)); // shorter than a tag
    }

    [Fact]
    public void SealAndOpenInPlace()
    {
        var buf = new byte[Plaintext.Length + 16];
        Plaintext.CopyTo(buf, 0);
        ChaChaPoly.Seal(Key, 3, buf.AsSpan(0, Plaintext.Length), [], buf);
        Assert.NotEqual(Plaintext, buf.AsSpan(0, Plaintext.Length).ToArray());
        Assert.True(ChaChaPoly.Open(Key, 3, buf, [], buf));
        Assert.Equal(Plaintext, buf.AsSpan(0, Plaintext.Length).ToArray());
    }

    [Fact]
    public void EmptyPlaintextIsJustATag()
    {
        // WireGuard keepalives and the handshake's AEAD(k, 0, empty, H) use this.
        var tag = new byte[16];
        ChaChaPoly.Seal(Key, 0, [], Aad, tag);
        Assert.True(ChaChaPoly.Open(Key, 0, tag, Aad, Span<byte>.Empty));
        tag[5] ^= 4;
        Assert.False(ChaChaPoly.Open(Key, 0, tag, Aad, Span<byte>.Empty));
    }

    [Fact]
    public void XChaChaDraftA31Vector()
    {
        // draft-irtf-cfrg-xchacha-03 appendix A.3.1.
        byte[] nonce = Hex("404142434445464748494a4b4c4d4e4f5051525354555657");
        const string expected =
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39" +
            "ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9" +
            "21f9664c97637da9768812f615c68b13b52e" + "c0875924c1c7987947deafd8780acf49";
        var box = new byte[Plaintext.Length + 16];
        ChaChaPoly.XSeal(Key, nonce, Plaintext, Aad, box);
        Assert.Equal(expected, ToHex(box));

        var opened = new byte[Plaintext.Length];
        Assert.True(ChaChaPoly.XOpen(Key, nonce, box, Aad, opened));
        Assert.Equal(Plaintext, opened);

        box[^1] ^= 0x10;
        Assert.False(ChaChaPoly.XOpen(Key, nonce, box, Aad, opened));
    }

    [Fact]
    public void BadSizesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Seal(new byte[31], 0, [], [], new byte[16]));
        Assert.Throws<ArgumentException>(() => ChaChaPoly.Seal(Key, 0, new byte[10], [], new byte[25]));
        Assert.Throws<ArgumentException>(() => ChaChaPoly.XSeal(Key, new byte[12], [], [], new byte[16]));
    }
}
