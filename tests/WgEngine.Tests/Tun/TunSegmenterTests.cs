using System.Buffers.Binary;
using System.Net;
using WgEngine.Egress;
using WgEngine.Tun;

namespace WgEngine.Tests.Tun;

/// <summary>
/// The TUN reader's segmentation and checksum completion on synthetic reads (vnet header + packet), as
/// the kernel hands them over with offloads on. Every output packet is checked field by field, and its
/// checksums with a deliberately naive word-by-word routine of the test's own (RFC 1071).
/// </summary>
public class TunSegmenterTests
{
    private sealed class RecordingSink : IPacketSink
    {
        public readonly List<byte[]> Packets = [];
        public bool Accept = true;
        public bool SendPacket(ReadOnlySpan<byte> ipPacket) { Packets.Add(ipPacket.ToArray()); return Accept; }
    }

    private const byte Fin = 0x01, Psh = 0x08, Ack = 0x10, Cwr = 0x80;
    private const ushort FirstId = 0xFFFE;        // wraps during the segments
    private const uint FirstSeq = 0xFFFFF000;     // wraps too

    // ---- an independent checksum: 16-bit big-endian words, one at a time ----

    internal static uint NaiveSum(ReadOnlySpan<byte> data, uint sum = 0)
    {
        for (int i = 0; i < data.Length; i += 2)
            sum += (uint)(data[i] << 8) | (i + 1 < data.Length ? data[i + 1] : 0u);
        return sum;
    }

    internal static ushort NaiveFold(uint sum)
    {
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    private static uint PseudoSum(byte[] p, int l4Length, byte proto)
    {
        bool v4 = p[0] >> 4 == 4;
        var src = v4 ? p.AsSpan(12, 4) : p.AsSpan(8, 16);
        var dst = v4 ? p.AsSpan(16, 4) : p.AsSpan(24, 16);
        return NaiveSum(dst, NaiveSum(src)) + proto + (uint)(l4Length >> 16) + (uint)(l4Length & 0xFFFF);
    }

    internal static bool TransportChecksumValid(byte[] p, int l4, byte proto) =>
        NaiveFold(NaiveSum(p.AsSpan(l4), PseudoSum(p, p.Length - l4, proto))) == 0xFFFF;

    // ---- synthetic super-packets ----

    private static byte[] Payload(int length)
    {
        var b = new byte[length];
        new Random(length).NextBytes(b);
        return b;
    }

    /// <summary>IP header (v4 with ID FirstId, or v6), a TCP header with 12 bytes of options (or UDP), the
    /// payload; lengths and checksums as a GSO skb has them: IP lengths of the whole, transport checksum
    /// holding a stale value (the segmenter must not trust it).</summary>
    private static byte[] Frame(bool v6, bool tcp, byte[] payload, int gsoSize, byte flags = Ack | Psh, byte? gsoType = null, byte vnetFlags = 1)
    {
        int ip = v6 ? 40 : 20, l4Len = tcp ? 32 : 8, headers = ip + l4Len;
        var f = new byte[VirtioNetHeader.Size + headers + payload.Length];
        var p = f.AsSpan(VirtioNetHeader.Size);
        byte proto = tcp ? (byte)6 : (byte)17;
        if (v6)
        {
            p[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(p[4..], (ushort)(l4Len + payload.Length));
            p[6] = proto; p[7] = 64;
            IPAddress.Parse("fd00::1").TryWriteBytes(p[8..24], out _);
            IPAddress.Parse("fd00:0:0:1::2").TryWriteBytes(p[24..40], out _);
        }
        else
        {
            p[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)(headers + payload.Length));
            BinaryPrimitives.WriteUInt16BigEndian(p[4..], FirstId);
            p[6] = 0x40; p[8] = 64; p[9] = proto;
            p[10] = 0xDE; p[11] = 0xAD;   // stale header checksum
            IPAddress.Parse("10.1.2.3").TryWriteBytes(p[12..16], out _);
            IPAddress.Parse("192.0.2.9").TryWriteBytes(p[16..20], out _);
        }
        var t = p[ip..];
        BinaryPrimitives.WriteUInt16BigEndian(t, 5201);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], 40000);
        if (tcp)
        {
            BinaryPrimitives.WriteUInt32BigEndian(t[4..], FirstSeq);
            BinaryPrimitives.WriteUInt32BigEndian(t[8..], 0x01020304);
            t[12] = 8 << 4;                       // data offset 8 words: 20 + 12 bytes of options
            t[13] = flags;
            BinaryPrimitives.WriteUInt16BigEndian(t[14..], 501);
            t[20] = 1; t[21] = 1; t[22] = 8; t[23] = 10;   // NOP NOP timestamps
            BinaryPrimitives.WriteUInt32BigEndian(t[24..], 0xA1B2C3D4);
            BinaryPrimitives.WriteUInt32BigEndian(t[28..], 0x11223344);
            t[16] = 0x12; t[17] = 0x34;           // stale checksum
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(t[4..], (ushort)(8 + payload.Length));
            t[6] = 0x12; t[7] = 0x34;
        }
        payload.CopyTo(t[l4Len..]);
        new VirtioNetHeader
        {
            Flags = vnetFlags, GsoType = gsoType ?? (tcp ? (v6 ? VirtioNetHeader.GsoTcpV6 : VirtioNetHeader.GsoTcpV4) : VirtioNetHeader.GsoUdpL4), HdrLen = (ushort)headers, GsoSize = (ushort)gsoSize,
            CsumStart = (ushort)ip, CsumOffset = tcp ? (ushort)16 : (ushort)6,
        }.Write(f);
        return f;
    }

    private static (RecordingSink Sink, TunCounters Counters, int Result) Run(byte[] frame, bool accept = true)
    {
        var sink = new RecordingSink { Accept = accept };
        var counters = new TunCounters();
        int r = TunSegmenter.Forward(frame, sink, counters);
        return (sink, counters, r);
    }

    /// <summary>Checks every segment against the original headers and payload.</summary>
    private static void AssertSegments(List<byte[]> segments, bool v6, bool tcp, byte[] payload, int gsoSize, byte flags)
    {
        int ip = v6 ? 40 : 20, l4Len = tcp ? 32 : 8, headers = ip + l4Len;
        int expected = (payload.Length + gsoSize - 1) / gsoSize;
        Assert.Equal(expected, segments.Count);
        var joined = new List<byte>();
        for (int i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            int chunk = Math.Min(gsoSize, payload.Length - i * gsoSize);
            Assert.Equal(headers + chunk, s.Length);
            if (v6)
            {
                Assert.Equal(6, s[0] >> 4);
                Assert.Equal(l4Len + chunk, BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(4)));
            }
            else
            {
                Assert.Equal(s.Length, BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(2)));
                Assert.Equal((ushort)(FirstId + i), BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(4)));
                Assert.Equal(0x40, s[6]);                                          // DF kept
                Assert.Equal(0xFFFF, NaiveFold(NaiveSum(s.AsSpan(0, 20))));        // header checksum
            }
            var t = s.AsSpan(ip);
            Assert.Equal(5201, BinaryPrimitives.ReadUInt16BigEndian(t));
            Assert.Equal(40000, BinaryPrimitives.ReadUInt16BigEndian(t[2..]));
            if (tcp)
            {
                Assert.Equal(unchecked(FirstSeq + (uint)(i * gsoSize)), BinaryPrimitives.ReadUInt32BigEndian(t[4..]));
                Assert.Equal(0x01020304u, BinaryPrimitives.ReadUInt32BigEndian(t[8..]));
                bool last = i == segments.Count - 1, first = i == 0;
                byte want = flags;
                if (!last) want = (byte)(want & ~(Fin | Psh));
                if (!first) want = (byte)(want & ~Cwr);
                Assert.Equal(want, t[13]);
                Assert.Equal(0xA1B2C3D4u, BinaryPrimitives.ReadUInt32BigEndian(t[24..]));   // options copied
                Assert.True(TransportChecksumValid(s, ip, 6), $"TCP checksum of segment {i}");
            }
            else
            {
                Assert.Equal(8 + chunk, BinaryPrimitives.ReadUInt16BigEndian(t[4..]));
                Assert.NotEqual(0, BinaryPrimitives.ReadUInt16BigEndian(t[6..]));
                Assert.True(TransportChecksumValid(s, ip, 17), $"UDP checksum of segment {i}");
            }
            joined.AddRange(s.AsSpan(headers).ToArray());
        }
        Assert.Equal(payload, joined.ToArray());
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    public void A_super_packet_becomes_valid_segments_with_an_odd_last_one(bool v6, bool tcp)
    {
        const int mss = 1368;
        var payload = Payload(7 * mss + 333);     // 8 segments, the last 333 bytes: an odd length
        var (sink, counters, r) = Run(Frame(v6, tcp, payload, mss));
        Assert.Equal(8, r);
        AssertSegments(sink.Packets, v6, tcp, payload, mss, Ack | Psh);
        Assert.Equal(1, counters.GsoReads);
        Assert.Equal(8, counters.FromHostPackets);
        Assert.Equal(sink.Packets.Sum(p => p.Length), counters.FromHostBytes);
        Assert.Equal(0, counters.Malformed);
    }

    [Fact]
    public void Fin_and_psh_only_on_the_last_segment_cwr_only_on_the_first()
    {
        var payload = Payload(3 * 1000);          // exact multiple: no short last segment
        var frame = Frame(false, true, payload, 1000, Ack | Psh | Fin | Cwr, VirtioNetHeader.GsoTcpV4 | VirtioNetHeader.GsoEcn);
        var (sink, _, r) = Run(frame);
        Assert.Equal(3, r);
        AssertSegments(sink.Packets, false, true, payload, 1000, Ack | Psh | Fin | Cwr);
        Assert.Equal(Ack | Cwr, sink.Packets[0][33]);
        Assert.Equal(Ack, sink.Packets[1][33]);
        Assert.Equal(Ack | Psh | Fin, sink.Packets[2][33]);
    }

    [Fact]
    public void A_super_packet_no_larger_than_gso_size_is_one_packet_with_its_flags()
    {
        var payload = Payload(999);
        var (sink, _, r) = Run(Frame(true, true, payload, 1200, Ack | Psh | Fin));
        Assert.Equal(1, r);
        AssertSegments(sink.Packets, true, true, payload, 1200, Ack | Psh | Fin);
    }

    [Fact]
    public void Refusals_by_the_sink_are_counted_per_segment()
    {
        var (_, counters, r) = Run(Frame(false, false, Payload(2500), 1000), accept: false);
        Assert.Equal(3, r);
        Assert.Equal(3, counters.NoPeer);
    }

    /// <summary>A plain packet with NEEDS_CSUM: the field holds the pseudo-header sum, as the kernel leaves it.</summary>
    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    public void A_partial_checksum_is_completed(bool v6, bool tcp)
    {
        var payload = Payload(777);
        var f = Frame(v6, tcp, payload, 0, gsoType: VirtioNetHeader.GsoNone);
        var p = f.AsSpan(VirtioNetHeader.Size);
        int ip = v6 ? 40 : 20, field = ip + (tcp ? 16 : 6);
        if (!v6)
        {
            p[10] = p[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(p[10..], (ushort)~NaiveFold(NaiveSum(p[..20])));
        }
        byte proto = tcp ? (byte)6 : (byte)17;
        BinaryPrimitives.WriteUInt16BigEndian(p[field..], NaiveFold(PseudoSum(p.ToArray(), p.Length - ip, proto)));
        var before = p.ToArray();

        var (sink, counters, r) = Run(f);
        Assert.Equal(1, r);
        var s = Assert.Single(sink.Packets);
        Assert.True(TransportChecksumValid(s, ip, proto));
        s[field] = before[field]; s[field + 1] = before[field + 1];
        Assert.Equal(before, s);                  // nothing else changed
        Assert.Equal(0, counters.GsoReads);
    }

    [Fact]
    public void A_complete_packet_without_flags_passes_unchanged()
    {
        var f = Frame(false, false, Payload(100), 0, gsoType: VirtioNetHeader.GsoNone, vnetFlags: 0);
        var (sink, _, r) = Run(f);
        Assert.Equal(1, r);
        Assert.Equal(f.AsSpan(VirtioNetHeader.Size).ToArray(), Assert.Single(sink.Packets));
    }

    public static TheoryData<string> MalformedCases => new()
    {
        "short", "empty packet", "ufo", "unknown gso", "tcpv4 on ipv6", "tcpv6 on ipv4", "udp gso on tcp", "tcp gso on udp",
        "csum start not ip header", "gso size 0", "tcp offset < 5", "wrong csum offset", "ip version 5", "truncated tcp header",
        "needs csum start beyond", "needs csum field beyond",
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Malformed_reads_are_dropped_and_counted(string kind)
    {
        byte[] f = Frame(false, true, Payload(3000), 1000);
        void Vnet(Func<VirtioNetHeader, VirtioNetHeader> change) => change(VirtioNetHeader.Read(f)).Write(f);
        switch (kind)
        {
            case "short": f = f[..5]; break;
            case "empty packet": f = f[..VirtioNetHeader.Size]; break;
            case "ufo": Vnet(h => h with { GsoType = VirtioNetHeader.GsoUdp }); break;
            case "unknown gso": Vnet(h => h with { GsoType = 9 }); break;
            case "tcpv4 on ipv6": f = Frame(true, true, Payload(3000), 1000, gsoType: VirtioNetHeader.GsoTcpV4); break;
            case "tcpv6 on ipv4": Vnet(h => h with { GsoType = VirtioNetHeader.GsoTcpV6 }); break;
            case "udp gso on tcp": Vnet(h => h with { GsoType = VirtioNetHeader.GsoUdpL4 }); break;
            case "tcp gso on udp": f = Frame(false, false, Payload(3000), 1000, gsoType: VirtioNetHeader.GsoTcpV4); break;
            case "csum start not ip header": Vnet(h => h with { CsumStart = 24 }); break;
            case "gso size 0": Vnet(h => h with { GsoSize = 0 }); break;
            case "tcp offset < 5": f[VirtioNetHeader.Size + 20 + 12] = 4 << 4; break;
            case "wrong csum offset": Vnet(h => h with { CsumOffset = 6 }); break;
            case "ip version 5": f[VirtioNetHeader.Size] = 0x55; break;
            case "truncated tcp header": f = f[..(VirtioNetHeader.Size + 30)]; break;
            case "needs csum start beyond": Vnet(h => h with { GsoType = 0, CsumStart = 5000 }); break;
            case "needs csum field beyond": Vnet(h => h with { GsoType = 0, CsumStart = 20, CsumOffset = 3031 }); break;
            default: throw new ArgumentException(kind);
        }
        var (sink, counters, r) = Run(f);
        Assert.Equal(-1, r);
        Assert.Empty(sink.Packets);
        Assert.Equal(1, counters.Malformed);
        Assert.Equal(0, counters.FromHostPackets);
    }

    [Fact]
    public void Random_headers_never_throw_and_every_drop_is_counted()
    {
        var rng = new Random(7);
        var sink = new RecordingSink();
        var counters = new TunCounters();
        var good = Frame(true, true, Payload(4000), 1300);
        long dropped = 0;
        for (int i = 0; i < 20_000; i++)
        {
            var f = (byte[])good.Clone();
            // Scramble the vnet header and some header bytes; sometimes cut the frame short.
            for (int k = 0; k < 4; k++) f[rng.Next(VirtioNetHeader.Size + 80)] = (byte)rng.Next(256);
            if (rng.Next(4) == 0) f = f[..rng.Next(f.Length)];
            if (TunSegmenter.Forward(f, sink, counters) < 0) dropped++;
        }
        Assert.Equal(dropped, counters.Malformed);
        Assert.InRange(dropped, 1, 19_999);       // both outcomes happened
    }

    private sealed class NullSink : IPacketSink
    {
        public int Count;
        public bool SendPacket(ReadOnlySpan<byte> ipPacket) { Count++; return true; }
    }

    [Fact]
    public void Segmenting_allocates_nothing()
    {
        var frame = Frame(false, true, Payload(40 * 1000 + 17), 1000);
        var work = new byte[frame.Length];
        var sink = new NullSink();
        var counters = new TunCounters();
        frame.CopyTo(work);
        TunSegmenter.Forward(work, sink, counters);    // warm-up (JIT)
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            frame.CopyTo(work, 0);
            TunSegmenter.Forward(work, sink, counters);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(101 * 41, sink.Count);
    }
}
