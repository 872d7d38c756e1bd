using System.Text;
using WgEngine.Crypto;

namespace WgEngine.Noise;

/// <summary>Protocol strings and the derived initial chaining key and hash (whitepaper §5.4).</summary>
internal static class NoiseConstants
{
    public const string Construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
    public const string Identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";
    public const string LabelMac1 = "mac1----";
    public const string LabelCookie = "cookie--";

    /// <summary>C0 = HASH(CONSTRUCTION).</summary>
    public static readonly byte[] InitialChainKey = ComputeC0();

    /// <summary>H0 = HASH(C0 || IDENTIFIER): the hash after mixing WireGuard's prologue.</summary>
    public static readonly byte[] InitialHash = ComputeH0();

    private static byte[] ComputeC0()
    {
        var c = new byte[32];
        Blake2s.Hash(Encoding.ASCII.GetBytes(Construction), c);
        return c;
    }

    private static byte[] ComputeH0()
    {
        var h = new byte[32];
        Blake2s.Hash(ComputeC0(), Encoding.ASCII.GetBytes(Identifier), h);
        return h;
    }
}

/// <summary>Wire layouts of the four message types (whitepaper §5.4.2-5.4.7). All integers little-endian.</summary>
internal static class MessageLayout
{
    public const byte TypeInitiation = 1;
    public const byte TypeResponse = 2;
    public const byte TypeCookieReply = 3;
    public const byte TypeTransport = 4;

    // Initiation: type(4) sender(4) ephemeral(32) static(32+16) timestamp(12+16) mac1(16) mac2(16)
    public const int InitiationSize = 148;
    public const int InitiationSenderOffset = 4;
    public const int InitiationBodyOffset = 8;          // ephemeral || static || timestamp, contiguous
    public const int InitiationBodySize = 32 + 48 + 28;
    public const int InitiationMac1Offset = 116;
    public const int InitiationMac2Offset = 132;

    // Response: type(4) sender(4) receiver(4) ephemeral(32) empty(0+16) mac1(16) mac2(16)
    public const int ResponseSize = 92;
    public const int ResponseSenderOffset = 4;
    public const int ResponseReceiverOffset = 8;
    public const int ResponseBodyOffset = 12;            // ephemeral || empty
    public const int ResponseBodySize = 32 + 16;
    public const int ResponseMac1Offset = 60;
    public const int ResponseMac2Offset = 76;

    // Cookie reply: type(4) receiver(4) nonce(24) encrypted cookie(16+16)
    public const int CookieReplySize = 64;
    public const int CookieReplyReceiverOffset = 4;
    public const int CookieReplyNonceOffset = 8;
    public const int CookieReplyCookieOffset = 32;

    // Transport: type(4) receiver(4) counter(8) encrypted packet (padded to 16) + tag(16)
    public const int TransportHeaderSize = 16;
    public const int TransportReceiverOffset = 4;
    public const int TransportCounterOffset = 8;
    public const int TransportMinSize = TransportHeaderSize + ChaChaPoly.TagSize; // a keepalive
    public const int PaddingMultiple = 16;

    /// <summary>Reads the message type: the first byte, with the next three required to be zero.</summary>
    public static int ReadType(ReadOnlySpan<byte> datagram) =>
        datagram.Length >= 4 && datagram[1] == 0 && datagram[2] == 0 && datagram[3] == 0 ? datagram[0] : -1;
}
