using System.Buffers.Binary;
using WgEngine.PacketPlane;

namespace WgEngine.Tun;

/// <summary>
/// Userspace GRO for TUN writes: groups the packets of one write batch into TCP (TSO) and UDP (USO)
/// super-packets, the reverse of <see cref="TunSegmenter"/>, so the kernel takes ~64 KiB at a time.
/// Pure and I/O-free: it reads the packets (never changes them) and fills <see cref="Groups"/>,
/// <see cref="Members"/> and, for each super-packet, a vnet header plus the merged IP/transport headers
/// in <see cref="Headers"/>; the writer then sends header + each member's payload with one writev.
/// The rules are the kernel's GRO rules (inet_gro_receive, tcp_gro_receive, udp_gro_receive), kept so
/// strict that segmenting the super-packet again gives the original packets byte for byte:
/// same flow (addresses, ports, protocol); IPv4 without options or fragments, DF set, same TOS and TTL,
/// IDs counting up by one; IPv6 with the same first word (traffic class, flow label) and hop limit, no
/// extension header; TCP with contiguous sequence numbers, the same ack, window, urgent pointer and
/// option bytes, flags ACK (PSH only on the last member, which ends the group); all members but the
/// last with the first one's payload size; 65,535 bytes at most. Packets whose checksums do not verify
/// are never merged (the kernel trusts a NEEDS_CSUM super-packet and, forwarding it, would compute fresh
/// checksums over corrupt data): they go alone, as does anything else. A transport checksum is verified
/// only when its packet is about to be merged (the head of a group when the second member comes, each
/// member as it joins), as wireguard-go's tun/offload_linux.go does: a packet that goes alone is written
/// without NEEDS_CSUM, and the kernel verifies it itself, so summing it here too would be the same work
/// twice (<see cref="ChecksumsLeftToKernel"/> counts them). Packets of one flow keep their order: groups go out in the order of their first
/// packet and a flow's next group starts only after its previous one is closed. No allocation per call.
/// </summary>
internal sealed class TunCoalescer
{
    /// <summary>Most packets per batch (and so per super-packet).</summary>
    public const int MaxPackets = 128;
    /// <summary>Room per super-packet in <see cref="Headers"/>: vnet header and IP + transport headers.</summary>
    public const int HeaderSlot = VirtioNetHeader.Size + TunSegmenter.MaxHeaders;

    private const byte ProtoTcp = 6, ProtoUdp = 17;
    private const byte TcpAck = 0x10, TcpPsh = 0x08;
    private const int MaxIpLength = 65535;

    /// <summary>One write: <see cref="Count"/> packets from <see cref="Members"/>[Start..]; with Count &gt; 1
    /// a super-packet whose vnet header and headers (<see cref="HeaderLength"/> bytes after the vnet
    /// header) are in <see cref="Headers"/> slot <see cref="Slot"/>; with Count 1 the packet goes alone.</summary>
    public struct Group
    {
        public int Start, Count, HeaderLength, Slot, Bytes;
    }

    public readonly Group[] Groups = new Group[MaxPackets];
    public readonly int[] Members = new int[MaxPackets];
    public readonly byte[] Headers = new byte[MaxPackets * HeaderSlot];
    public int GroupCount { get; private set; }
    /// <summary>Of the last call's packets, those that could have been merged (TCP/UDP candidates) but went alone, and
    /// whose transport checksum was therefore not summed here: the kernel verifies them.</summary>
    public int ChecksumsLeftToKernel { get; private set; }

    // Per packet: its parse (0 headers: not a candidate), its group; per group: its state while open.
    private readonly int[] _headers = new int[MaxPackets], _l4 = new int[MaxPackets], _groupOf = new int[MaxPackets];
    private readonly int[] _head = new int[MaxPackets], _last = new int[MaxPackets], _total = new int[MaxPackets], _gso = new int[MaxPackets];
    private readonly bool[] _open = new bool[MaxPackets];
    // Per packet: its transport checksum was summed (and verified: one that failed no longer heads an open group).
    private readonly bool[] _verified = new bool[MaxPackets];

    /// <summary>Groups <paramref name="count"/> packets (packet i at offsets[i], lengths[i] in
    /// <paramref name="arena"/>); TCP merging when <paramref name="tcp"/>, UDP when <paramref name="udp"/>.
    /// Returns <see cref="GroupCount"/>.</summary>
    public int Coalesce(ReadOnlySpan<byte> arena, ReadOnlySpan<int> offsets, ReadOnlySpan<int> lengths, int count, bool tcp, bool udp)
    {
        if ((uint)count > MaxPackets) throw new ArgumentOutOfRangeException(nameof(count));
        int groups = 0;
        for (int i = 0; i < count; i++)
        {
            var p = arena.Slice(offsets[i], lengths[i]);
            int headers = Candidate(p, tcp, udp, out int l4);
            _headers[i] = headers;
            _l4[i] = l4;
            _verified[i] = false;
            int g = headers == 0 ? -1 : OpenGroupOf(arena, offsets, p, l4, groups);
            if (headers == 0 && l4 > 0) CloseFlow(arena, offsets, p, l4, groups);   // e.g. a FIN: nothing of its flow may pass it
            bool corrupt = false;
            if (g >= 0 && CanAppend(arena.Slice(offsets[_last[g]], lengths[_last[g]]), p, g, l4, headers))
            {
                // Merging: the head (when it is still alone) and this packet must verify. A head that does not stays
                // alone and this packet heads the next group; a packet that does not goes alone and ends the group.
                int head = _head[g];
                if (Groups[g].Count == 1 && !Verify(arena.Slice(offsets[head], lengths[head]), head)) _open[g] = false;
                else if (!(corrupt = !Verify(p, i)))
                {
                    Append(g, i, p, l4, headers);
                    continue;
                }
            }
            if (g >= 0) _open[g] = false;
            g = groups++;
            _head[g] = _last[g] = i;
            _total[g] = p.Length;
            _gso[g] = p.Length - headers;
            _open[g] = headers > 0 && !corrupt && !PushSet(p, l4);
            Groups[g] = new Group { Count = 1, Slot = g, Bytes = p.Length };
            _groupOf[i] = g;
        }

        // Members grouped, each group's in packet order; groups in the order of their first packet.
        int start = 0;
        for (int g = 0; g < groups; g++)
        {
            Groups[g].Start = start;
            start += Groups[g].Count;
            Groups[g].Count = 0;
        }
        for (int i = 0; i < count; i++)
        {
            ref var group = ref Groups[_groupOf[i]];
            Members[group.Start + group.Count++] = i;
        }
        int leftToKernel = 0;
        for (int g = 0; g < groups; g++)
        {
            if (Groups[g].Count > 1) WriteHeaders(arena, offsets, lengths, g);
            else if (_headers[_head[g]] > 0 && !_verified[_head[g]]) leftToKernel++;
        }
        ChecksumsLeftToKernel = leftToKernel;
        GroupCount = groups;
        return groups;
    }

    /// <summary>The header length of a packet that may be merged, 0 if it may not (l4: the transport
    /// header's offset when it is TCP/UDP at all, else 0).</summary>
    private static int Candidate(ReadOnlySpan<byte> p, bool tcp, bool udp, out int l4)
    {
        l4 = 0;
        if (p.Length < 20) return 0;
        byte proto;
        int version = p[0] >> 4;
        if (version == 4)
        {
            if (p[0] != 0x45 || BinaryPrimitives.ReadUInt16BigEndian(p[2..]) != p.Length) return 0;
            proto = p[9];
            if (proto is not (ProtoTcp or ProtoUdp)) return 0;
            l4 = 20;
            // DF, no MF, no fragment offset; a header checksum that verifies.
            if (BinaryPrimitives.ReadUInt16BigEndian(p[6..]) != 0x4000 || !Checksum.IsValid(p[..20])) return 0;
        }
        else if (version == 6)
        {
            if (p.Length < 40 || BinaryPrimitives.ReadUInt16BigEndian(p[4..]) != p.Length - 40) return 0;
            proto = p[6];
            if (proto is not (ProtoTcp or ProtoUdp)) return 0;
            l4 = 40;
        }
        else return 0;

        int headers;
        if (proto == ProtoTcp)
        {
            if (p.Length < l4 + 20) { l4 = 0; return 0; }
            int thlen = (p[l4 + 12] >> 4) * 4;
            headers = l4 + thlen;
            byte flags = p[l4 + 13];
            if (!tcp || thlen < 20 || headers > TunSegmenter.MaxHeaders || p.Length <= headers || (flags & ~TcpPsh) != TcpAck) return 0;
        }
        else
        {
            if (p.Length < l4 + 8) { l4 = 0; return 0; }
            headers = l4 + 8;
            // Checksum 0 over IPv4 means none: the segmenter would put one in, so no round trip.
            if (!udp || p.Length <= headers || BinaryPrimitives.ReadUInt16BigEndian(p[(l4 + 4)..]) != p.Length - l4
                || BinaryPrimitives.ReadUInt16BigEndian(p[(l4 + 6)..]) == 0) return 0;
        }
        return headers;
    }

    /// <summary>Sums candidate <paramref name="i"/>'s transport checksum (once) and says whether it verifies.</summary>
    private bool Verify(ReadOnlySpan<byte> p, int i)
    {
        _verified[i] = true;
        return TransportChecksumValid(p, _l4[i], p[_l4[i] == 20 ? 9 : 6]);
    }

    private static bool TransportChecksumValid(ReadOnlySpan<byte> p, int l4, byte proto)
    {
        var t = p[l4..];
        ushort pseudo = TunSegmenter.PseudoHeaderSum(p, l4 == 20, t.Length, proto);
        return Checksum.Add(pseudo, Checksum.Sum(t)) == 0xFFFF;
    }

    /// <summary>Same addresses, protocol and ports (and IP version).</summary>
    private static bool SameFlow(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, int l4)
    {
        if (a[0] >> 4 != b[0] >> 4) return false;
        if (l4 == 20) return a[9] == b[9] && a.Slice(12, 8).SequenceEqual(b.Slice(12, 8)) && a.Slice(20, 4).SequenceEqual(b.Slice(20, 4));
        return a[6] == b[6] && a.Slice(8, 36).SequenceEqual(b.Slice(8, 36));
    }

    private int OpenGroupOf(ReadOnlySpan<byte> arena, ReadOnlySpan<int> offsets, ReadOnlySpan<byte> p, int l4, int groups)
    {
        for (int g = groups - 1; g >= 0; g--)
            if (_open[g] && _l4[_head[g]] == l4 && SameFlow(arena[offsets[_head[g]]..], p, l4)) return g;
        return -1;
    }

    private void CloseFlow(ReadOnlySpan<byte> arena, ReadOnlySpan<int> offsets, ReadOnlySpan<byte> p, int l4, int groups)
    {
        if (p.Length < l4 + 4) return;
        int g = OpenGroupOf(arena, offsets, p, l4, groups);
        if (g >= 0) _open[g] = false;
    }

    /// <summary>The kernel's rules for merging packet p after the group's last member.</summary>
    private bool CanAppend(ReadOnlySpan<byte> last, ReadOnlySpan<byte> p, int g, int l4, int headers)
    {
        if (_headers[_head[g]] != headers) return false;
        int payload = p.Length - headers;
        if (payload > _gso[g] || _total[g] + payload > MaxIpLength || Groups[g].Count >= MaxPackets) return false;
        if (l4 == 20)
        {
            if (last[1] != p[1] || last[8] != p[8]) return false;                             // TOS, TTL
            if ((ushort)(BinaryPrimitives.ReadUInt16BigEndian(last[4..]) + 1) != BinaryPrimitives.ReadUInt16BigEndian(p[4..])) return false;
        }
        else if (!last[..4].SequenceEqual(p[..4]) || last[7] != p[7]) return false;        // class + flow label, hop limit
        if (p[l4 == 20 ? 9 : 6] == ProtoUdp) return true;

        var a = last[l4..headers];
        var b = p[l4..headers];
        uint nextSeq = BinaryPrimitives.ReadUInt32BigEndian(a[4..]) + (uint)(last.Length - headers);
        return BinaryPrimitives.ReadUInt32BigEndian(b[4..]) == nextSeq
            && a.Slice(8, 4).SequenceEqual(b.Slice(8, 4))          // ack
            && a[12] == b[12]                                      // data offset
            && a.Slice(14, 2).SequenceEqual(b.Slice(14, 2))        // window
            && a[18..].SequenceEqual(b[18..]);                     // urgent pointer, options
    }

    private void Append(int g, int i, ReadOnlySpan<byte> p, int l4, int headers)
    {
        _last[g] = i;
        _total[g] += p.Length - headers;
        _groupOf[i] = g;
        Groups[g].Count++;
        Groups[g].Bytes += p.Length;
        if (PushSet(p, l4) || p.Length - headers < _gso[g]) _open[g] = false;   // a short segment ends the group too
    }

    /// <summary>PSH ends a TCP group (the receiver is to see the data now).</summary>
    private static bool PushSet(ReadOnlySpan<byte> p, int l4) => p[l4 == 20 ? 9 : 6] == ProtoTcp && (p[l4 + 13] & TcpPsh) != 0;

    /// <summary>The super-packet's vnet header and headers: the first member's, with the whole length,
    /// a fresh IPv4 header checksum, PSH when the last member has it, and the transport checksum left as
    /// the pseudo-header sum for the kernel to complete (NEEDS_CSUM).</summary>
    private void WriteHeaders(ReadOnlySpan<byte> arena, ReadOnlySpan<int> offsets, ReadOnlySpan<int> lengths, int g)
    {
        ref var group = ref Groups[g];
        int head = Members[group.Start], last = Members[group.Start + group.Count - 1];
        int headers = _headers[head], l4 = _l4[head];
        var first = arena.Slice(offsets[head], lengths[head]);
        var slot = Headers.AsSpan(g * HeaderSlot, HeaderSlot);
        var h = slot[VirtioNetHeader.Size..];
        first[..headers].CopyTo(h);
        int total = _total[g];
        bool v4 = l4 == 20;
        byte proto = h[v4 ? 9 : 6];
        if (v4)
        {
            BinaryPrimitives.WriteUInt16BigEndian(h[2..], (ushort)total);
            h[10] = h[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(h[10..], Checksum.Compute(h[..20]));
        }
        else BinaryPrimitives.WriteUInt16BigEndian(h[4..], (ushort)(total - 40));
        int l4Length = total - l4;
        int checksumAt;
        byte gsoType;
        if (proto == ProtoTcp)
        {
            var lastPacket = arena.Slice(offsets[last], lengths[last]);
            h[l4 + 13] |= (byte)(lastPacket[l4 + 13] & TcpPsh);
            checksumAt = l4 + 16;
            gsoType = v4 ? VirtioNetHeader.GsoTcpV4 : VirtioNetHeader.GsoTcpV6;
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(h[(l4 + 4)..], (ushort)l4Length);
            checksumAt = l4 + 6;
            gsoType = VirtioNetHeader.GsoUdpL4;
        }
        ushort pseudo = TunSegmenter.PseudoHeaderSum(h, v4, l4Length, proto);
        BinaryPrimitives.WriteUInt16BigEndian(h[checksumAt..], pseudo);
        new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsCsum, GsoType = gsoType, HdrLen = (ushort)headers,
            GsoSize = (ushort)(lengths[head] - headers), CsumStart = (ushort)l4, CsumOffset = (ushort)(checksumAt - l4),
        }.Write(slot);
        group.HeaderLength = headers;
    }
}
