using System.Buffers.Binary;
using System.Net;
using WgEngine.Egress;
using WgEngine.Tun;

namespace WgEngine.Tests.Tun;

/// <summary>
/// The TUN write coalescer's rules on synthetic batches, and the round trip: every super-packet it
/// emits, cut up again by <see cref="TunSegmenter"/> (the kernel's segmentation, as we implement it on
/// read), gives back the original packets byte for byte. Checksums of the inputs are built with the
/// test's own naive routine (TunSegmenterTests).
/// </summary>
public class TunCoalescerTests
{
    private const byte Psh = 0x08, Ack = 0x10, Fin = 0x01, Syn = 0x02, Ece = 0x40;

    private sealed class Sink : IPacketSink
    {
        public readonly List<byte[]> Packets = [];
        public bool SendPacket(ReadOnlySpan<byte> ipPacket) { Packets.Add(ipPacket.ToArray()); return true; }
    }

    internal sealed record Seg(bool V6 = false, bool Udp = false, uint Seq = 1000, ushort Id = 100, int Payload = 1000,
        byte Flags = Ack, byte Ttl = 64, byte Tos = 0, ushort SrcPort = 40000, ushort Window = 500, byte TsVal = 1,
        bool BadChecksum = false, ushort Frag = 0x4000, string Src = "10.1.0.2", string Dst = "10.9.0.9", ushort DstPort = 5201, uint AckNo = 0x12345678, bool Timestamps = true);

    /// <summary>An IPv4/IPv6 TCP (12 bytes of options: NOP NOP timestamp, unless without) or UDP packet, checksums valid.</summary>
    internal static byte[] Packet(Seg s)
    {
        int ip = s.V6 ? 40 : 20, l4Len = s.Udp ? 8 : s.Timestamps ? 32 : 20;
        var p = new byte[ip + l4Len + s.Payload];
        byte proto = s.Udp ? (byte)17 : (byte)6;
        if (s.V6)
        {
            p[0] = 0x60; p[1] = s.Tos;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)(p.Length - 40));
            p[6] = proto; p[7] = s.Ttl;
            IPAddress.Parse(s.Src == "10.1.0.2" ? "fd00::2" : "fd00::3").TryWriteBytes(p.AsSpan(8, 16), out _);
            IPAddress.Parse("fd00:1::9").TryWriteBytes(p.AsSpan(24, 16), out _);
        }
        else
        {
            p[0] = 0x45; p[1] = s.Tos;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), s.Id);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(6), s.Frag);
            p[8] = s.Ttl; p[9] = proto;
            IPAddress.Parse(s.Src).TryWriteBytes(p.AsSpan(12, 4), out _);
            IPAddress.Parse(s.Dst).TryWriteBytes(p.AsSpan(16, 4), out _);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), (ushort)~TunSegmenterTests.NaiveFold(TunSegmenterTests.NaiveSum(p.AsSpan(0, 20))));
        }
        var t = p.AsSpan(ip);
        BinaryPrimitives.WriteUInt16BigEndian(t, s.SrcPort);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], s.DstPort);
        int checksumAt;
        if (s.Udp)
        {
            BinaryPrimitives.WriteUInt16BigEndian(t[4..], (ushort)t.Length);
            checksumAt = 6;
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(t[4..], s.Seq);
            BinaryPrimitives.WriteUInt32BigEndian(t[8..], s.AckNo);
            t[12] = (byte)(l4Len / 4 << 4); t[13] = s.Flags;
            BinaryPrimitives.WriteUInt16BigEndian(t[14..], s.Window);
            if (s.Timestamps) { t[20] = 1; t[21] = 1; t[22] = 8; t[23] = 10; t[27] = s.TsVal; t[31] = 7; }
            checksumAt = 16;
        }
        for (int i = ip + l4Len; i < p.Length; i++) p[i] = (byte)(s.Seq + i * 7);
        uint pseudo = TunSegmenterTests.NaiveSum(p.AsSpan(s.V6 ? 8 : 12, s.V6 ? 32 : 8)) + proto + (uint)t.Length;
        ushort c = (ushort)~TunSegmenterTests.NaiveFold(TunSegmenterTests.NaiveSum(t, pseudo));
        if (s.Udp && c == 0) c = 0xFFFF;
        BinaryPrimitives.WriteUInt16BigEndian(t[checksumAt..], s.BadChecksum ? (ushort)(c ^ 0x0101) : c);
        return p;
    }

    /// <summary>A run of contiguous full segments of one flow.</summary>
    private static List<Seg> Run(int count, Seg first) =>
        Enumerable.Range(0, count).Select(i => first with { Seq = first.Seq + (uint)(i * first.Payload), Id = (ushort)(first.Id + i) }).ToList();

    private sealed record Result(TunCoalescer C, byte[][] Inputs, byte[] Arena, int[] Offsets, int[] Lengths)
    {
        public TunCoalescer.Group[] Groups => C.Groups.Take(C.GroupCount).ToArray();
        public int[] Sizes => Groups.Select(g => g.Count).ToArray();
        public int[] MembersOf(int g) => C.Members.AsSpan(Groups[g].Start, Groups[g].Count).ToArray();

        /// <summary>The bytes one group's write carries: vnet header and packet, as the kernel gets them.</summary>
        public byte[] Frame(int g)
        {
            var group = Groups[g];
            var m = MembersOf(g);
            if (group.Count == 1) return new byte[VirtioNetHeader.Size].Concat(Inputs[m[0]]).ToArray();
            var f = new List<byte>(C.Headers.AsSpan(group.Slot * TunCoalescer.HeaderSlot, VirtioNetHeader.Size + group.HeaderLength).ToArray());
            foreach (int i in m) f.AddRange(Inputs[i].AsSpan(group.HeaderLength).ToArray());
            return f.ToArray();
        }
    }

    private static Result Coalesce(IEnumerable<Seg> segs, bool udp = true, TunCoalescer? reuse = null) => Coalesce(segs.Select(Packet).ToArray(), udp, reuse);

    private static Result Coalesce(byte[][] inputs, bool udp = true, TunCoalescer? reuse = null)
    {
        var arena = new byte[inputs.Sum(p => p.Length) + 64];
        var offsets = new int[inputs.Length];
        var lengths = new int[inputs.Length];
        int at = 7;   // not at 0, not aligned
        for (int i = 0; i < inputs.Length; i++)
        {
            inputs[i].CopyTo(arena, at);
            offsets[i] = at;
            lengths[i] = inputs[i].Length;
            at += inputs[i].Length;
        }
        var c = reuse ?? new TunCoalescer();
        c.Coalesce(arena, offsets, lengths, inputs.Length, tcp: true, udp: udp);
        return new Result(c, inputs, arena, offsets, lengths);
    }

    /// <summary>Every group, segmented again, gives back its input packets byte for byte, in order.</summary>
    private static void AssertRoundTrip(Result r)
    {
        var expected = new List<byte[]>();
        var got = new List<byte[]>();
        for (int g = 0; g < r.Groups.Length; g++)
        {
            var sink = new Sink();
            var frame = r.Frame(g);
            Assert.Equal(r.Groups[g].Count, TunSegmenter.Forward(frame, sink, new TunCounters()));
            got.AddRange(sink.Packets);
            expected.AddRange(r.MembersOf(g).Select(i => r.Inputs[i]));
        }
        Assert.Equal(r.Inputs.Length, got.Count);
        for (int i = 0; i < got.Count; i++) Assert.Equal(expected[i], got[i]);
    }

    private static VirtioNetHeader Vnet(Result r, int g) => VirtioNetHeader.Read(r.C.Headers.AsSpan(r.Groups[g].Slot * TunCoalescer.HeaderSlot));

    [Fact]
    public void Contiguous_tcp_segments_become_one_tso_super_packet_that_segments_back_exactly()
    {
        var r = Coalesce(Run(10, new Seg()));
        Assert.Equal([10], r.Sizes);
        var h = Vnet(r, 0);
        Assert.Equal(VirtioNetHeader.GsoTcpV4, h.GsoType);
        Assert.Equal(VirtioNetHeader.FlagNeedsCsum, h.Flags);
        Assert.Equal(1000, h.GsoSize);
        Assert.Equal(20, h.CsumStart);
        Assert.Equal(16, h.CsumOffset);
        Assert.Equal(52, h.HdrLen);
        var frame = r.Frame(0);
        var ip = frame.AsSpan(VirtioNetHeader.Size);
        Assert.Equal(52 + 10_000, BinaryPrimitives.ReadUInt16BigEndian(ip[2..]));
        Assert.Equal(0xFFFF, TunSegmenterTests.NaiveFold(TunSegmenterTests.NaiveSum(ip[..20])));   // fresh header checksum
        // The partial checksum: the pseudo-header sum over the whole length, for the kernel to complete.
        uint pseudo = TunSegmenterTests.NaiveSum(ip.Slice(12, 8)) + 6 + (uint)(ip.Length - 20);
        Assert.Equal(TunSegmenterTests.NaiveFold(pseudo), BinaryPrimitives.ReadUInt16BigEndian(ip[36..]));
        AssertRoundTrip(r);
    }

    [Fact]
    public void A_sequence_gap_starts_a_new_group()
    {
        var segs = Run(3, new Seg());
        segs.AddRange(Run(3, new Seg(Seq: 1000 + 4000, Id: 103)));   // one segment missing
        var r = Coalesce(segs);
        Assert.Equal([3, 3], r.Sizes);
        AssertRoundTrip(r);
    }

    [Theory]
    [InlineData("ttl")]
    [InlineData("tos")]
    [InlineData("window")]
    [InlineData("options")]
    [InlineData("id")]
    public void A_differing_field_is_not_merged(string field)
    {
        var segs = Run(4, new Seg());
        segs[2] = field switch
        {
            "ttl" => segs[2] with { Ttl = 63 },
            "tos" => segs[2] with { Tos = 4 },
            "window" => segs[2] with { Window = 501 },
            "options" => segs[2] with { TsVal = 2 },
            _ => segs[2] with { Id = 7 },
        };
        var r = Coalesce(segs);
        Assert.Equal([2, 1, 1], r.Sizes);   // the odd one neither joins the run nor lets the rest join it
        AssertRoundTrip(r);
    }

    [Theory]
    [InlineData(Fin | Ack)]
    [InlineData(Syn | Ack)]
    [InlineData(Ece | Ack)]
    [InlineData(0x04 | Ack)]   // RST
    [InlineData(0x20 | Ack)]   // URG
    public void Segments_with_other_flags_go_alone_and_keep_their_place(byte flags)
    {
        var segs = Run(5, new Seg());
        segs[2] = segs[2] with { Flags = flags };
        var r = Coalesce(segs);
        Assert.Equal([2, 1, 2], r.Sizes);
        Assert.Equal([0, 1, 2, 3, 4], Enumerable.Range(0, 3).SelectMany(r.MembersOf).ToArray());
        AssertRoundTrip(r);
    }

    [Fact]
    public void Psh_ends_a_super_packet_and_stays_on_its_last_segment()
    {
        var segs = Run(6, new Seg());
        segs[2] = segs[2] with { Flags = Ack | Psh };
        var r = Coalesce(segs);
        Assert.Equal([3, 3], r.Sizes);
        Assert.Equal(Ack | Psh, r.Frame(0)[VirtioNetHeader.Size + 33]);
        AssertRoundTrip(r);
    }

    [Fact]
    public void A_short_segment_ends_the_group_and_a_longer_one_is_not_merged()
    {
        var segs = Run(3, new Seg());
        segs.Add(new Seg(Seq: 4000, Id: 103, Payload: 500));
        segs.Add(new Seg(Seq: 4500, Id: 104));
        var r = Coalesce(segs);
        Assert.Equal([4, 1], r.Sizes);
        var bigger = Coalesce(new[] { new Seg(Payload: 500), new Seg(Seq: 1500, Id: 101) });
        Assert.Equal([1, 1], bigger.Sizes);
        AssertRoundTrip(r);
    }

    [Fact]
    public void A_super_packet_stays_within_65535_bytes()
    {
        var r = Coalesce(Run(50, new Seg(Payload: 1400)));
        Assert.All(r.Groups, g => Assert.True(g.HeaderLength + g.Count * 1400 <= 65535));
        Assert.Equal([46, 4], r.Sizes);   // 52 + 46 * 1400 = 64,452; one more would be 65,852
        AssertRoundTrip(r);
    }

    [Fact]
    public void Ipv6_tcp_merges_and_a_differing_hop_limit_does_not()
    {
        var segs = Run(5, new Seg(V6: true));
        segs[4] = segs[4] with { Ttl = 1 };
        var r = Coalesce(segs);
        Assert.Equal([4, 1], r.Sizes);
        Assert.Equal(VirtioNetHeader.GsoTcpV6, Vnet(r, 0).GsoType);
        Assert.Equal(40, Vnet(r, 0).CsumStart);
        AssertRoundTrip(r);
    }

    [Fact]
    public void Udp_merges_equal_datagrams_with_a_shorter_last_one_only_when_allowed()
    {
        var segs = Run(4, new Seg(Udp: true, Payload: 1200));
        segs.Add(new Seg(Udp: true, Payload: 300, Id: 104));
        var r = Coalesce(segs);
        Assert.Equal([5], r.Sizes);
        Assert.Equal(VirtioNetHeader.GsoUdpL4, Vnet(r, 0).GsoType);
        Assert.Equal(6, Vnet(r, 0).CsumOffset);
        AssertRoundTrip(r);
        var v6 = Coalesce(Run(3, new Seg(V6: true, Udp: true)));
        Assert.Equal([3], v6.Sizes);
        AssertRoundTrip(v6);

        Assert.Equal([1, 1, 1, 1, 1], Coalesce(segs, udp: false).Sizes);
    }

    [Fact]
    public void Interleaved_flows_are_merged_per_flow_and_keep_their_own_order()
    {
        var a = Run(4, new Seg());
        var b = Run(4, new Seg(SrcPort: 40001, Seq: 9000, Id: 500));
        var c = Run(3, new Seg(Src: "10.1.0.3", Seq: 77, Id: 9));
        var mixed = new List<Seg> { a[0], b[0], a[1], c[0], b[1], b[2], a[2], c[1], a[3], b[3], c[2] };
        var r = Coalesce(mixed);
        Assert.Equal([4, 4, 3], r.Sizes);
        Assert.Equal([0, 2, 6, 8], r.MembersOf(0));
        Assert.Equal([1, 4, 5, 9], r.MembersOf(1));
        Assert.Equal([3, 7, 10], r.MembersOf(2));
        AssertRoundTrip(r);
    }

    [Fact]
    public void A_fin_of_a_flow_is_not_overtaken_by_that_flows_later_segments()
    {
        var segs = Run(4, new Seg());
        var fin = segs[2] with { Flags = Fin | Ack };
        var r = Coalesce(new[] { segs[0], segs[1], fin, segs[3] with { Seq = segs[2].Seq } });
        Assert.Equal([2, 1, 1], r.Sizes);
        Assert.Equal([2], r.MembersOf(1));
    }

    [Fact]
    public void Bad_checksums_fragments_and_malformed_packets_go_alone()
    {
        var segs = Run(3, new Seg());
        var inputs = segs.Select(Packet).ToList();
        inputs.Insert(1, Packet(new Seg(Seq: 2000, Id: 101, BadChecksum: true)));
        var r = Coalesce(inputs.ToArray());
        Assert.Equal([1, 1, 2], r.Sizes);   // the corrupt one splits the run and is never merged
        Assert.Equal([1, 1], Coalesce(new[] { new Seg(Frag: 0x2000), new Seg(Frag: 0x2000, Seq: 2000, Id: 101) }).Sizes);
        Assert.Equal([1, 1], Coalesce(new[] { new Seg(Frag: 0), new Seg(Frag: 0, Seq: 2000, Id: 101) }).Sizes);   // no DF

        var truncated = Packet(new Seg())[..30];
        var lying = Packet(new Seg(Seq: 2000, Id: 101));
        BinaryPrimitives.WriteUInt16BigEndian(lying.AsSpan(2), 9000);
        var junk = new byte[] { 0x45, 0, 0 };
        var bad = Coalesce(new[] { truncated, lying, junk, Array.Empty<byte>(), Packet(new Seg(Seq: 3000, Id: 102)) });
        Assert.Equal([1, 1, 1, 1, 1], bad.Sizes);
    }

    [Fact]
    public void A_checksum_is_summed_only_for_packets_that_are_merged()
    {
        // A corrupt head: found when the second packet would join it; it goes alone and the next group starts after it.
        var segs = Run(3, new Seg());
        var inputs = segs.Select(Packet).ToArray();
        inputs[0] = Packet(segs[0] with { BadChecksum = true });
        var r = Coalesce(inputs);
        Assert.Equal([1, 2], r.Sizes);
        Assert.Equal(0, r.C.ChecksumsLeftToKernel);   // all three were summed: two merged, one refused
        AssertRoundTrip(r);

        // Packets that go alone anyway (different flows, a sequence gap) are not summed: the kernel verifies them.
        var lone = Coalesce(new[] { new Seg(), new Seg(DstPort: 5202), new Seg(Seq: 9999, Id: 101), new Seg(Udp: true) });
        Assert.Equal([1, 1, 1, 1], lone.Sizes);
        Assert.Equal(4, lone.C.ChecksumsLeftToKernel);

        // A corrupt packet alone is not summed either (the kernel drops it); one after a merge still ends the group.
        var tail = Run(3, new Seg()).Select(Packet).ToArray();
        tail[2] = Packet(Run(3, new Seg())[2] with { BadChecksum = true });
        var t = Coalesce(tail.Append(Packet(new Seg(DstPort: 5300))).ToArray());
        Assert.Equal([2, 1, 1], t.Sizes);
        Assert.Equal(1, t.C.ChecksumsLeftToKernel);   // only the other flow's lone packet
    }

    [Fact]
    public void Coalescing_allocates_nothing()
    {
        var c = new TunCoalescer();
        var inputs = Run(30, new Seg()).Concat(Run(30, new Seg(V6: true, Udp: true, Payload: 1200))).Select(Packet).ToArray();
        var r = Coalesce(inputs, reuse: c);
        for (int i = 0; i < 10; i++) c.Coalesce(r.Arena, r.Offsets, r.Lengths, inputs.Length, true, true);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) c.Coalesce(r.Arena, r.Offsets, r.Lengths, inputs.Length, true, true);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal([30, 30], r.Sizes);
    }
}
