using WgEngine.PacketPlane;
using static WgEngine.Tests.PacketPlane.TestPackets;

namespace WgEngine.Tests.PacketPlane;

public class ChecksumTests
{
    [Fact]
    public void Rfc1071_Section3_NumericalExample()
    {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 have the one's complement sum dd f2, checksum 22 0d.
        byte[] data = FromHex("0001f203f4f5f6f7");
        Assert.Equal(0xDDF2, Checksum.Sum(data));
        Assert.Equal(0x220D, Checksum.Compute(data));
    }

    [Fact]
    public void WellKnownIPv4HeaderExample()
    {
        // The classic worked example (Wikipedia, "IPv4 header checksum"): 192.168.0.1 -> 192.168.0.199, UDP,
        // header checksum b861.
        byte[] header = FromHex("450000730000400040110000c0a80001c0a800c7");
        Assert.Equal(0xB861, Checksum.Compute(header));
        header[10] = 0xB8; header[11] = 0x61;
        Assert.True(Checksum.IsValid(header));
        header[15] ^= 1;
        Assert.False(Checksum.IsValid(header));
    }

    [Fact]
    public void MatchesReferenceForEveryLengthAndAlignment()
    {
        var rng = new Random(1071);
        byte[] buf = new byte[300];
        for (int round = 0; round < 20; round++)
        {
            rng.NextBytes(buf);
            for (int offset = 0; offset < 8; offset++)
                for (int len = 0; len + offset <= buf.Length; len++)
                {
                    var s = buf.AsSpan(offset, len);
                    Assert.Equal(ReferenceSum(s), Checksum.Sum(s));
                }
        }
    }

    [Fact]
    public void CarriesAreFoldedForAllOnesData()
    {
        // Maximal words stress the end-around carry in every accumulator lane.
        for (int len = 0; len <= 100; len++)
        {
            byte[] d = new byte[len];
            Array.Fill(d, (byte)0xFF);
            Assert.Equal(ReferenceSum(d), Checksum.Sum(d));
        }
    }

    [Fact]
    public void LargeBufferMatchesReference()
    {
        byte[] d = Data(65535, 7);
        Assert.Equal(ReferenceSum(d), Checksum.Sum(d));
    }

    [Fact]
    public void PseudoHeaderV6MatchesReference()
    {
        var rng = new Random(8200);
        for (int i = 0; i < 200; i++)
        {
            byte[] src = Data(16, rng.Next()), dst = Data(16, rng.Next()), upper = Data(rng.Next(0, 200), rng.Next());
            byte nh = (byte)rng.Next(256);
            int expected = ReferenceChecksum(WithPseudoHeaderV6(src, dst, nh, upper));
            Assert.Equal(expected, Checksum.ComputeV6(src, dst, nh, upper));

            if (upper.Length >= 4)
            {
                upper[2] = 0; upper[3] = 0;
                ushort c = Checksum.ComputeV6(src, dst, nh, upper);
                upper[2] = (byte)(c >> 8); upper[3] = (byte)c;
                Assert.True(Checksum.IsValidV6(src, dst, nh, upper));
                Assert.Equal(0xFFFF, ReferenceSum(WithPseudoHeaderV6(src, dst, nh, upper)));
                upper[^1] ^= 0x10;
                Assert.False(Checksum.IsValidV6(src, dst, nh, upper));
            }
        }
    }

    [Fact]
    public void PseudoHeaderV6CountsLengthsAbove65535()
    {
        // The upper-layer length is a 32-bit field (RFC 8200 §8.1); its high word must be summed too.
        byte[] src = Data(16, 1), dst = Data(16, 2);
        byte[] pseudo = WithPseudoHeaderV6(src, dst, 58, ReadOnlySpan<byte>.Empty);
        int big = 0x12345;
        pseudo[33] = 0x01; pseudo[34] = 0x23; pseudo[35] = 0x45;
        Assert.Equal(ReferenceSum(pseudo), Checksum.PseudoHeaderSumV6(src, dst, big, 58));
    }

    [Fact]
    public void PseudoHeaderV4MatchesReference()
    {
        // RFC 768: source, destination, zero, protocol, UDP length.
        byte[] src = V4Client, dst = V4Gateway;
        byte[] pseudo = [.. src, .. dst, 0, 17, 0x01, 0x2c];
        Assert.Equal(ReferenceSum(pseudo), Checksum.PseudoHeaderSumV4(src, dst, 0x012c, 17));
    }

    [Fact]
    public void IncrementalUpdateMatchesFullRecompute()
    {
        var rng = new Random(1624);
        for (int i = 0; i < 2000; i++)
        {
            byte[] d = Data(rng.Next(1, 40) * 2, rng.Next());
            d[0] = 0; d[1] = 0;
            ushort before = Checksum.Compute(d);
            int w = rng.Next(1, d.Length / 2) * 2;
            if (w >= d.Length) continue;
            ushort oldWord = (ushort)(d[w] << 8 | d[w + 1]);
            ushort newWord = (ushort)rng.Next(65536);
            d[w] = (byte)(newWord >> 8); d[w + 1] = (byte)newWord;
            ushort updated = Checksum.Update(before, oldWord, newWord);
            d[0] = (byte)(updated >> 8); d[1] = (byte)updated;
            Assert.Equal(0xFFFF, ReferenceSum(d));
        }
    }

    /// <summary>RFC 1071 as written: big-endian 16-bit words, an odd last byte padded with zero, carries folded.</summary>
    private static ushort ReferenceSum(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        for (int i = 0; i + 1 < data.Length; i += 2) sum += (ulong)(data[i] << 8 | data[i + 1]);
        if ((data.Length & 1) != 0) sum += (ulong)data[^1] << 8;
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0xFF)]     // every word 0xFFFF: the most carries
    [InlineData(-1)]       // random bytes
    public void TheVectorSumEqualsRfc1071ForEveryLengthAndAlignment(int fill)
    {
        var rng = new Random(fill);
        var buffer = new byte[70_000];
        if (fill < 0) rng.NextBytes(buffer); else buffer.AsSpan().Fill((byte)fill);
        // Every length around the vector block size (64) and a few large ones, at every alignment of 0..7.
        var lengths = Enumerable.Range(0, 300).Concat([1419, 1420, 1421, 1460, 9000, 65_535, 65_536, 69_990]);
        foreach (int length in lengths)
            for (int offset = 0; offset < 8; offset++)
            {
                var data = buffer.AsSpan(offset, length);
                ushort expected = ReferenceSum(data);
                Assert.True(expected == Checksum.Sum(data), $"length {length}, offset {offset}: {Checksum.Sum(data):x4}, RFC 1071 {expected:x4}");
                Assert.Equal(expected, Checksum.SumScalarForTests(data));
            }
    }
}
