using WgEngine.PacketPlane;
using static WgEngine.Tests.PacketPlane.TestPackets;

namespace WgEngine.Tests.PacketPlane;

public class IpHeaderTests
{
    [Fact]
    public void ParsesIPv4WithPaddingAndReturnsAddressSpansIntoThePacket()
    {
        byte[] payload = Data(13, 1);
        byte[] p = IPv4(V4Client, V4Gateway, 17, payload, padding: 11);
        Assert.True(IpHeader.TryParse(p, out var info));
        Assert.Equal(4, info.Version);
        Assert.Equal(33, info.TotalLength);
        Assert.Equal(20, info.HeaderLength);
        Assert.Equal(17, info.Protocol);
        Assert.Equal(13, info.PayloadLength);
        Assert.Equal(V4Client, info.Source(p).ToArray());
        Assert.Equal(V4Gateway, info.Destination(p).ToArray());
        Assert.Equal(payload, info.Payload(p).ToArray());
        Assert.Equal(V4Client, IpHeader.Source(p).ToArray());
        Assert.Equal(V4Gateway, IpHeader.Destination(p).ToArray());
        // No copy: the span aliases the packet buffer.
        p[12] = 99;
        Assert.Equal(99, info.Source(p)[0]);
    }

    [Fact]
    public void ParsesIPv4WithOptions()
    {
        byte[] p = IPv4(V4Client, V4Gateway, 6, Data(20, 2), options: [1, 1, 1, 0]);
        Assert.True(IpHeader.TryParse(p, out var info));
        Assert.Equal(24, info.HeaderLength);
        Assert.Equal(44, info.TotalLength);
        Assert.Equal(V4Gateway, info.Destination(p).ToArray());
    }

    [Fact]
    public void ParsesIPv6WithoutWalkingExtensionHeaders()
    {
        byte[] p = IPv6(V6Client, V6Gateway, 0 /* hop-by-hop */, Data(17, 3), padding: 7);
        Assert.True(IpHeader.TryParse(p, out var info));
        Assert.Equal(6, info.Version);
        Assert.Equal(57, info.TotalLength);
        Assert.Equal(40, info.HeaderLength);
        Assert.Equal(0, info.Protocol);
        Assert.Equal(V6Client, info.Source(p).ToArray());
        Assert.Equal(V6Gateway, info.Destination(p).ToArray());
        Assert.Equal(V6Gateway, IpHeader.Destination(p).ToArray());
    }

    [Theory]
    [InlineData(0x44)] // IHL 4 < 5
    [InlineData(0x40)] // IHL 0
    [InlineData(0x4F)] // IHL 15 = 60 bytes > 28-byte buffer
    [InlineData(0x55)] // version 5
    [InlineData(0x05)] // version 0
    public void RejectsBadVersionOrIhl(byte firstByte)
    {
        byte[] p = IPv4(V4Client, V4Gateway, 1, Data(8, 4));
        p[0] = firstByte;
        Assert.False(IpHeader.TryParse(p, out _));
        Assert.True(IpHeader.Source(p).IsEmpty);
    }

    [Theory]
    [InlineData(19)] // below the header
    [InlineData(0)]
    [InlineData(29)] // one past the buffer
    [InlineData(65535)]
    public void RejectsIPv4TotalLengthOutsideHeaderAndBuffer(int total)
    {
        byte[] p = IPv4(V4Client, V4Gateway, 1, Data(8, 5));
        p[2] = (byte)(total >> 8); p[3] = (byte)total;
        Assert.False(IpHeader.TryParse(p, out _));
    }

    [Fact]
    public void AcceptsIPv4TotalLengthEqualToHeader()
    {
        byte[] p = IPv4(V4Client, V4Gateway, 1, ReadOnlySpan<byte>.Empty, padding: 12);
        Assert.True(IpHeader.TryParse(p, out var info));
        Assert.Equal(20, info.TotalLength);
        Assert.Equal(0, info.PayloadLength);
    }

    [Fact]
    public void RejectsIPv6PayloadLengthBeyondBuffer()
    {
        byte[] p = IPv6(V6Client, V6Gateway, 58, Data(8, 6));
        Assert.True(IpHeader.TryParse(p, out _));
        p[5]++;
        Assert.False(IpHeader.TryParse(p, out _));
    }

    [Fact]
    public void TruncationsNeverThrowAndAreRejected()
    {
        byte[][] packets = [IPv4(V4Client, V4Gateway, 1, Data(30, 7)), IPv6(V6Client, V6Gateway, 58, Data(30, 8))];
        foreach (var p in packets)
        {
            for (int len = 0; len < p.Length; len++)
                Assert.False(IpHeader.TryParse(p.AsSpan(0, len), out _));
            Assert.True(IpHeader.TryParse(p, out _));
        }
    }

    [Fact]
    public void RandomGarbageNeverThrowsAndParsedFieldsStayInBounds()
    {
        var rng = new Random(4242);
        for (int i = 0; i < 5000; i++)
        {
            byte[] b = new byte[rng.Next(0, 120)];
            rng.NextBytes(b);
            if (b.Length > 0 && i % 2 == 0) b[0] = (byte)((i % 4 == 0 ? 0x40 : 0x60) | (b[0] & 0x0F));
            if (!IpHeader.TryParse(b, out var info)) continue;
            Assert.InRange(info.HeaderLength, 20, info.TotalLength);
            Assert.InRange(info.TotalLength, info.HeaderLength, b.Length);
            Assert.Equal(info.AddressLength, info.Source(b).Length);
            Assert.Equal(info.AddressLength, info.Destination(b).Length);
        }
    }
}
