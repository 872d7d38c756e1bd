using WgEngine.PacketPlane;
using static WgEngine.Tests.PacketPlane.TestPackets;

namespace WgEngine.Tests.PacketPlane;

public class IcmpEchoResponderTests
{
    private static byte[] V4Request(int dataLength, int padding = 0, ushort flagsAndOffset = 0x4000, int seed = 1) =>
        IPv4(V4Client, V4Gateway, 1, IcmpV4Echo(8, 0x1234, 7, Data(dataLength, seed)), padding, flagsAndOffset: flagsAndOffset);

    private static byte[] V6Request(int dataLength, int padding = 0, int seed = 1) =>
        IPv6Echo(V6Client, V6Gateway, 128, 0x1234, 7, Data(dataLength, seed), padding);

    [Theory]
    [InlineData(56, 0)]   // default ping size
    [InlineData(37, 0)]   // odd ICMP length
    [InlineData(0, 0)]    // header only
    [InlineData(1, 0)]
    [InlineData(56, 12)]  // WireGuard padding to a multiple of 16 (84 -> 96)
    [InlineData(37, 11)]  // 65 -> 76: odd packet, odd padding
    [InlineData(1400, 4)]
    public void IPv4EchoRequestBecomesReply(int dataLength, int padding)
    {
        byte[] req = V4Request(dataLength, padding, seed: dataLength);
        byte[] original = (byte[])req.Clone();
        int total = 28 + dataLength;

        int len = IcmpEchoResponder.TryBuildReply(req, req.Length);

        Assert.Equal(total, len);
        byte[] rep = req;
        Assert.Equal(0x45, rep[0]);
        Assert.Equal(original[1], rep[1]);                                   // TOS kept
        Assert.Equal(original.AsSpan(2, 6).ToArray(), rep.AsSpan(2, 6).ToArray()); // length, id, flags kept
        Assert.Equal(64, rep[8]);                                            // TTL
        Assert.Equal(1, rep[9]);
        Assert.Equal(V4Gateway, rep.AsSpan(12, 4).ToArray());
        Assert.Equal(V4Client, rep.AsSpan(16, 4).ToArray());
        Assert.True(V4HeaderValid(rep), "IPv4 header checksum");
        Assert.Equal(0, rep[20]);                                            // echo reply
        Assert.Equal(0, rep[21]);
        Assert.Equal(original.AsSpan(24, total - 24).ToArray(), rep.AsSpan(24, total - 24).ToArray()); // id, seq, data
        Assert.True(V4IcmpValid(rep, len), "ICMP checksum");
        Assert.Equal(ReferenceChecksum(Zeroed(rep.AsSpan(20, total - 20), 2)), rep[22] << 8 | rep[23]);
        Assert.Equal(original.AsSpan(total).ToArray(), rep.AsSpan(total).ToArray()); // padding not touched
    }

    [Theory]
    [InlineData(56, 0)]
    [InlineData(37, 0)]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(56, 8)]   // 104 -> 112
    [InlineData(37, 11)]  // 85 -> 96
    [InlineData(1380, 4)]
    public void IPv6EchoRequestBecomesReply(int dataLength, int padding)
    {
        byte[] req = V6Request(dataLength, padding, seed: dataLength);
        byte[] original = (byte[])req.Clone();
        int total = 48 + dataLength;

        int len = IcmpEchoResponder.TryBuildReply(req, req.Length);

        Assert.Equal(total, len);
        byte[] rep = req;
        Assert.Equal(original.AsSpan(0, 7).ToArray(), rep.AsSpan(0, 7).ToArray()); // version, class, flow, length, next header
        Assert.Equal(64, rep[7]);                                                     // hop limit
        Assert.Equal(V6Gateway, rep.AsSpan(8, 16).ToArray());
        Assert.Equal(V6Client, rep.AsSpan(24, 16).ToArray());
        Assert.Equal(129, rep[40]);
        Assert.Equal(0, rep[41]);
        Assert.Equal(original.AsSpan(44, total - 44).ToArray(), rep.AsSpan(44, total - 44).ToArray());
        Assert.True(V6IcmpValid(rep, len), "ICMPv6 checksum");
        Assert.Equal(ReferenceChecksum(WithPseudoHeaderV6(rep.AsSpan(8, 16), rep.AsSpan(24, 16), 58, Zeroed(rep.AsSpan(40, total - 40), 2))),
            rep[42] << 8 | rep[43]);
        Assert.Equal(original.AsSpan(total).ToArray(), rep.AsSpan(total).ToArray());
    }

    [Fact]
    public void LengthArgumentBoundsThePacket()
    {
        // Buffer bigger than the datagram (pooled buffer): only `length` bytes count.
        byte[] req = V4Request(20);
        byte[] buffer = new byte[2048];
        req.CopyTo(buffer, 0);
        Assert.Equal(48, IcmpEchoResponder.TryBuildReply(buffer, 48 + 16));
        Assert.Equal(0, IcmpEchoResponder.TryBuildReply(V4Request(20), 47)); // total length beyond `length`
        Assert.Equal(0, IcmpEchoResponder.TryBuildReply(V4Request(20), 49)); // `length` beyond buffer
        Assert.Equal(0, IcmpEchoResponder.TryBuildReply(V4Request(20), -1));
    }

    [Fact]
    public void SequenceOfRequestsWithVaryingChecksumsAllVerify()
    {
        // Sweeps identifiers/sequences so the incremental update sees many checksum values (incl. carries).
        for (int seq = 0; seq < 3000; seq++)
        {
            byte[] v4 = IPv4(V4Client, V4Gateway, 1, IcmpV4Echo(8, (ushort)(seq * 7919), (ushort)seq, Data(seq % 64, seq)), WireGuardPadding(28 + seq % 64));
            int n4 = IcmpEchoResponder.TryBuildReply(v4, v4.Length);
            Assert.Equal(28 + seq % 64, n4);
            Assert.True(V4HeaderValid(v4) && V4IcmpValid(v4, n4));

            byte[] v6 = IPv6Echo(V6Client, V6Gateway, 128, (ushort)(seq * 7919), (ushort)seq, Data(seq % 64, seq));
            int n6 = IcmpEchoResponder.TryBuildReply(v6, v6.Length);
            Assert.Equal(48 + seq % 64, n6);
            Assert.True(V6IcmpValid(v6, n6));
        }
    }

    [Fact]
    public void AllZeroIPv4ReplyGetsChecksumFFFF()
    {
        // Identifier 0, sequence 0, no data: the reply message is all zeros, whose checksum is ~0 = 0xFFFF,
        // not the 0x0000 a plain RFC 1624 update yields.
        byte[] p = IPv4(V4Client, V4Gateway, 1, IcmpV4Echo(8, 0, 0, []));
        Assert.Equal(0xF7, p[22]);
        Assert.Equal(28, IcmpEchoResponder.TryBuildReply(p, p.Length));
        Assert.Equal(0xFF, p[22]);
        Assert.Equal(0xFF, p[23]);
        Assert.True(V4IcmpValid(p, 28));
    }

    [Fact]
    public void IPv6ReplyWithZeroChecksumIsValid()
    {
        // Finds an identifier whose reply checksum is 0x0000 and checks that it verifies (the pseudo-header
        // makes the sum non-zero, so 0x0000 is the canonical value there).
        for (int id = 0; id < 65536; id++)
        {
            byte[] p = IPv6Echo(V6Client, V6Gateway, 128, (ushort)id, 0, []);
            Assert.Equal(48, IcmpEchoResponder.TryBuildReply(p, p.Length));
            if (p[42] != 0 || p[43] != 0) continue;
            Assert.True(V6IcmpValid(p, 48));
            return;
        }
        Assert.Fail("no identifier gave a zero checksum");
    }

    [Fact]
    public void BadIcmpChecksumIsNotAnswered()
    {
        byte[] v4 = V4Request(33);
        v4[23] ^= 0x01;
        AssertNoReply(v4);
        byte[] v6 = V6Request(33);
        v6[43] ^= 0x01;
        AssertNoReply(v6);
        byte[] v6Data = V6Request(33);
        v6Data[^1] ^= 0x80; // corrupt the last (odd) data byte
        AssertNoReply(v6Data);
    }

    [Fact]
    public void BadIPv4HeaderChecksumIsNotAnswered()
    {
        byte[] v4 = V4Request(16);
        v4[11] ^= 0x01;
        AssertNoReply(v4);
        byte[] ttl = V4Request(16);
        ttl[8]--; // header changed without updating its checksum
        AssertNoReply(ttl);
    }

    [Fact]
    public void IPv6PseudoHeaderIsPartOfTheChecksum()
    {
        // The ICMPv6 message is intact; only the address differs, so only a pseudo-header check catches it.
        byte[] v6 = V6Request(16);
        v6[39] ^= 0x01;
        AssertNoReply(v6);
    }

    [Fact]
    public void EchoRepliesAndOtherMessagesAreNotAnswered()
    {
        AssertNoReply(IPv4(V4Client, V4Gateway, 1, IcmpV4Echo(0, 1, 1, Data(8, 1))));           // echo reply
        AssertNoReply(IPv4(V4Client, V4Gateway, 1, IcmpV4Echo(3, 1, 1, Data(8, 1), code: 3))); // unreachable
        AssertNoReply(IPv4(V4Client, V4Gateway, 1, IcmpV4Echo(8, 1, 1, Data(8, 1), code: 1))); // echo, code != 0
        AssertNoReply(IPv6Echo(V6Client, V6Gateway, 129, 1, 1, Data(8, 1)));
        AssertNoReply(IPv6Echo(V6Client, V6Gateway, 135, 1, 1, Data(8, 1)));                   // neighbor solicitation
        AssertNoReply(IPv6Echo(V6Client, V6Gateway, 128, 1, 1, Data(8, 1), code: 1));
    }

    [Fact]
    public void OtherProtocolsAreNotAnswered()
    {
        // An echo-request-shaped payload behind the wrong protocol / an extension header.
        AssertNoReply(IPv4(V4Client, V4Gateway, 17, IcmpV4Echo(8, 1, 1, Data(8, 1))));
        byte[] v6 = V6Request(8);
        v6[6] = 0; // hop-by-hop header in front: not walked, not answered
        AssertNoReply(v6);
        // ICMP (v4) inside IPv6 and ICMPv6 type 128 inside IPv4.
        AssertNoReply(IPv6(V6Client, V6Gateway, 1, IcmpV4Echo(8, 1, 1, Data(8, 1))));
        AssertNoReply(IPv4(V4Client, V4Gateway, 58, IcmpV4Echo(128, 1, 1, Data(8, 1))));
    }

    [Theory]
    [InlineData(0x2000)] // MF set, offset 0: first fragment
    [InlineData(0x0001)] // offset 8, last fragment
    [InlineData(0x2005)] // middle fragment
    [InlineData(0x4001)] // DF with offset: still a fragment
    public void FragmentsAreNotAnswered(ushort flagsAndOffset) =>
        AssertNoReply(V4Request(32, flagsAndOffset: flagsAndOffset));

    [Theory]
    [InlineData(0x0000)]
    [InlineData(0x4000)]
    [InlineData(0x8000)] // reserved bit is not a fragment marker
    public void UnfragmentedRequestsAreAnswered(ushort flagsAndOffset)
    {
        byte[] p = V4Request(32, flagsAndOffset: flagsAndOffset);
        Assert.Equal(60, IcmpEchoResponder.TryBuildReply(p, p.Length));
    }

    [Fact]
    public void IPv4OptionsAreNotAnswered()
    {
        // Documented limitation: RFC 1122 §3.2.2.6 option echoing is not implemented.
        AssertNoReply(IPv4(V4Client, V4Gateway, 1, IcmpV4Echo(8, 1, 1, Data(8, 1)), options: [1, 1, 1, 0]));
    }

    [Fact]
    public void TooShortIcmpMessagesAreNotAnswered()
    {
        // 7 bytes of ICMP with a valid checksum: shorter than the echo header.
        byte[] icmp = IcmpV4Echo(8, 0x0102, 0, []).AsSpan(0, 7).ToArray();
        icmp[2] = 0; icmp[3] = 0;
        int c = ReferenceChecksum(icmp);
        icmp[2] = (byte)(c >> 8); icmp[3] = (byte)c;
        AssertNoReply(IPv4(V4Client, V4Gateway, 1, icmp));
        byte[] icmp6 = [128, 0, 0, 0, 1, 2, 0];
        int c6 = ReferenceChecksum(WithPseudoHeaderV6(V6Client, V6Gateway, 58, icmp6));
        icmp6[2] = (byte)(c6 >> 8); icmp6[3] = (byte)c6;
        AssertNoReply(IPv6(V6Client, V6Gateway, 58, icmp6));
    }

    [Fact]
    public void TruncatedPacketsAtEveryLengthAreNotAnswered()
    {
        byte[][] requests = [V4Request(37, padding: 11), V6Request(37, padding: 11), V4Request(0), V6Request(0)];
        foreach (byte[] full in requests)
        {
            int total = full[0] >> 4 == 4 ? full[2] << 8 | full[3] : 40 + (full[4] << 8 | full[5]);
            for (int len = 0; len < total; len++)
            {
                // A truncated copy in an exact-size buffer, and the full buffer with a short `length`.
                byte[] copy = full.AsSpan(0, len).ToArray();
                Assert.Equal(0, IcmpEchoResponder.TryBuildReply(copy, copy.Length));
                byte[] whole = (byte[])full.Clone();
                Assert.Equal(0, IcmpEchoResponder.TryBuildReply(whole, len));
                Assert.Equal(full, whole);
            }
            for (int len = total; len <= full.Length; len++)
                Assert.Equal(total, IcmpEchoResponder.TryBuildReply((byte[])full.Clone(), len));
        }
    }

    [Fact]
    public void RandomGarbageNeverThrowsAndAnyReplyIsValid()
    {
        var rng = new Random(792);
        int answered = 0;
        for (int i = 0; i < 20000; i++)
        {
            byte[] b;
            switch (i % 4)
            {
                case 0: // pure noise
                    b = new byte[rng.Next(0, 200)];
                    rng.NextBytes(b);
                    break;
                case 1: // a valid request with a few random bytes flipped
                case 2:
                    b = i % 8 < 4 ? V4Request(rng.Next(0, 60), rng.Next(0, 16), seed: i) : V6Request(rng.Next(0, 60), rng.Next(0, 16), seed: i);
                    for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(b.Length)] ^= (byte)rng.Next(1, 256);
                    break;
                default: // noise behind a plausible version nibble
                    b = new byte[rng.Next(20, 120)];
                    rng.NextBytes(b);
                    b[0] = (byte)((rng.Next(2) == 0 ? 0x40 : 0x60) | (b[0] & 0x0F));
                    break;
            }
            int n = IcmpEchoResponder.TryBuildReply(b, b.Length);
            if (n == 0) continue;
            // Whatever it answered must be a well-formed reply.
            answered++;
            Assert.InRange(n, 28, b.Length);
            if (b[0] >> 4 == 4)
                Assert.True(b[20] == 0 && V4HeaderValid(b) && V4IcmpValid(b, n));
            else
                Assert.True(b[40] == 129 && V6IcmpValid(b, n));
        }
        Assert.True(answered > 0, "no mutated request was answered; the mutation mix no longer exercises replies");
    }

    [Fact]
    public void HotPathDoesNotAllocate()
    {
        byte[] v4 = V4Request(56, 12), v6 = V6Request(56, 8);
        byte[] v4Copy = new byte[v4.Length], v6Copy = new byte[v6.Length];
        int answered = 0;
        Run(); // warm up (JIT) before measuring
        // Tiered JIT may recompile mid-run and allocate on this thread once; an allocation per call
        // would show in every run, so the best of five runs must be zero.
        long best = long.MaxValue;
        for (int run = 0; run < 5; run++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            answered = 0;
            Run();
            best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.Equal(2000, answered);
        }
        Assert.Equal(0, best);

        void Run()
        {
            for (int i = 0; i < 1000; i++)
            {
                v4.CopyTo(v4Copy, 0);
                v6.CopyTo(v6Copy, 0);
                if (IcmpEchoResponder.TryBuildReply(v4Copy, v4Copy.Length) == 84) answered++;
                if (IcmpEchoResponder.TryBuildReply(v6Copy, v6Copy.Length) == 104) answered++;
                _ = IpHeader.TryParse(v4Copy, out _);   // measured for its allocations only
            }
        }
    }

    private static void AssertNoReply(byte[] packet)
    {
        byte[] before = (byte[])packet.Clone();
        Assert.Equal(0, IcmpEchoResponder.TryBuildReply(packet, packet.Length));
        Assert.Equal(before, packet); // rejected packets are left untouched
    }

    private static byte[] Zeroed(ReadOnlySpan<byte> data, int offset)
    {
        byte[] copy = data.ToArray();
        copy[offset] = 0; copy[offset + 1] = 0;
        return copy;
    }
}
