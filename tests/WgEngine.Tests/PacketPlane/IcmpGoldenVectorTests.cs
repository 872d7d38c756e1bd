using WgEngine.PacketPlane;
using static WgEngine.Tests.PacketPlane.TestPackets;

namespace WgEngine.Tests.PacketPlane;

/// <summary>
/// Golden vectors from the real Linux stack (kernel 6.18, iputils ping -s 37 -p a5), captured with
/// capture-ping.py in this folder: the request is ping's own echo request read from a TUN device, with
/// source and destination swapped so it is addressed to the kernel; the reply is what the kernel sent back.
/// Our reply must match the kernel's byte for byte in the ICMP message and in the IP fields we own;
/// the IPv4 identification/flags and IPv6 flow label are the sender's choice and differ.
/// </summary>
public class IcmpGoldenVectorTests
{
    private const string V4Request =
        "45000041ccd340004001583c0ad500020ad5000108003aa013d40001a7cd056b00000000d3d80b0000000000" +
        "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
    private const string V4KernelReply =
        "45000041ccd400004001983b0ad500010ad50002000042a013d40001a7cd056b00000000d3d80b0000000000" +
        "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
    private const string V6Request =
        "6008652a002d3a40fd000213000000000000000000000002fd000213000000000000000000000001" +
        "8000a4f613d50001a7cd056b00000000f2ee0b0000000000a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
    private const string V6KernelReply =
        "60002665002d3a40fd000213000000000000000000000001fd000213000000000000000000000002" +
        "8100a3f613d50001a7cd056b00000000f2ee0b0000000000a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";

    [Theory]
    [InlineData(0)]
    [InlineData(11)] // as WireGuard would deliver it: 65 bytes padded to 80
    public void IPv4ReplyMatchesLinux(int padding)
    {
        byte[] kernel = FromHex(V4KernelReply);
        byte[] packet = Padded(FromHex(V4Request), padding);

        int n = IcmpEchoResponder.TryBuildReply(packet, packet.Length);

        Assert.Equal(kernel.Length, n);
        Assert.Equal(kernel.AsSpan(0, 4).ToArray(), packet.AsSpan(0, 4).ToArray());   // version/IHL, TOS, total length
        Assert.Equal(kernel.AsSpan(8, 2).ToArray(), packet.AsSpan(8, 2).ToArray());   // TTL 64, protocol
        Assert.Equal(kernel.AsSpan(12, 8).ToArray(), packet.AsSpan(12, 8).ToArray()); // addresses
        Assert.True(V4HeaderValid(packet));
        Assert.Equal(kernel.AsSpan(20).ToArray(), packet.AsSpan(20, n - 20).ToArray()); // whole ICMP message
    }

    [Theory]
    [InlineData(0)]
    [InlineData(11)] // 85 bytes padded to 96
    public void IPv6ReplyMatchesLinux(int padding)
    {
        byte[] kernel = FromHex(V6KernelReply);
        byte[] packet = Padded(FromHex(V6Request), padding);

        int n = IcmpEchoResponder.TryBuildReply(packet, packet.Length);

        Assert.Equal(kernel.Length, n);
        Assert.Equal(kernel.AsSpan(4).ToArray(), packet.AsSpan(4, n - 4).ToArray()); // everything after the flow label
    }

    [Fact]
    public void KernelRequestsAndRepliesVerifyWithOurChecksum()
    {
        // The same captures checked the other way round: Linux's checksums pass our verification.
        foreach (string hex in new[] { V4Request, V4KernelReply })
        {
            byte[] p = FromHex(hex);
            Assert.True(Checksum.IsValid(p.AsSpan(0, 20)));
            Assert.True(Checksum.IsValid(p.AsSpan(20)));
        }
        foreach (string hex in new[] { V6Request, V6KernelReply })
        {
            byte[] p = FromHex(hex);
            Assert.True(Checksum.IsValidV6(p.AsSpan(8, 16), p.AsSpan(24, 16), 58, p.AsSpan(40)));
        }
        // The kernel's replies are replies, not requests: not answered again.
        byte[] r4 = FromHex(V4KernelReply), r6 = FromHex(V6KernelReply);
        Assert.Equal(0, IcmpEchoResponder.TryBuildReply(r4, r4.Length));
        Assert.Equal(0, IcmpEchoResponder.TryBuildReply(r6, r6.Length));
    }

    private static byte[] Padded(byte[] packet, int padding)
    {
        byte[] b = new byte[packet.Length + padding];
        packet.CopyTo(b, 0);
        return b;
    }
}
