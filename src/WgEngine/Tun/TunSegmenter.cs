using System.Buffers.Binary;
using WgEngine.Egress;
using WgEngine.PacketPlane;

namespace WgEngine.Tun;

/// <summary>
/// Turns one read from a TUN with IFF_VNET_HDR (virtio_net_hdr + packet of up to 64 KiB) into the IP
/// packets the tunnel carries: a plain packet goes as it is, with its checksum completed when the kernel
/// left it partial (NEEDS_CSUM); a TCP (TSO) or UDP (USO) super-packet is cut into gso_size segments,
/// each a complete IP packet with its own lengths, IPv4 ID and header checksum, TCP sequence number and
/// flags, and transport checksum - what the kernel's own segmentation (tcp_gso_segment,
/// __udp_gso_segment) would have produced.
/// Works in place in the read buffer: segment i's headers are written just before its payload, over
/// the tail of payload the sink has already copied (IPacketSink must not keep the span). No allocation.
/// What the kernel would never send (but is checked anyway) is dropped and counted as Malformed.
/// </summary>
internal static class TunSegmenter
{
    private const byte ProtoTcp = 6, ProtoUdp = 17;
    private const byte TcpFin = 0x01, TcpPsh = 0x08, TcpCwr = 0x80;
    /// <summary>Largest IP + transport header we segment: IPv4 60 + TCP 60 (IPv6 40 + TCP 60 is less).</summary>
    internal const int MaxHeaders = 120;

    /// <summary>Hands the packet(s) in <paramref name="frame"/> (vnet header first) to the sink; counts them
    /// (FromHost*, NoPeer, GsoReads, Malformed) in <paramref name="counters"/>, which only this thread writes.
    /// Returns the number of packets handed over, or -1 when the frame was malformed and dropped.</summary>
    public static int Forward(Span<byte> frame, IPacketSink sink, TunCounters counters)
    {
        if (frame.Length <= VirtioNetHeader.Size) return Malformed(counters);
        var h = VirtioNetHeader.Read(frame);
        var packet = frame[VirtioNetHeader.Size..];
        switch (h.Gso)
        {
            case VirtioNetHeader.GsoNone:
                if (h.NeedsCsum && !CompleteChecksum(packet, h.CsumStart, h.CsumOffset)) return Malformed(counters);
                Send(packet, sink, counters);
                return 1;
            case VirtioNetHeader.GsoTcpV4:
            case VirtioNetHeader.GsoTcpV6:
            case VirtioNetHeader.GsoUdpL4:
                int n = Segment(packet, h, sink, counters);
                if (n < 0) return Malformed(counters);
                counters.gsoReads++;
                return n;
            default:
                return Malformed(counters);   // e.g. GSO_UDP (UFO): never enabled
        }
    }

    /// <summary>NEEDS_CSUM: the field at csum_start + csum_offset holds the pseudo-header sum; fold in the
    /// sum from csum_start to the end and store its complement (as skb_checksum_help: 0 becomes 0xFFFF).</summary>
    internal static bool CompleteChecksum(Span<byte> packet, int start, int offset)
    {
        int field = start + offset;
        if (start >= packet.Length || field + 2 > packet.Length) return false;
        ushort c = (ushort)~Checksum.Sum(packet[start..]);
        BinaryPrimitives.WriteUInt16BigEndian(packet[field..], c == 0 ? (ushort)0xFFFF : c);
        return true;
    }

    /// <summary>Cuts a TSO/USO super-packet into segments; -1 if its headers do not add up.</summary>
    private static int Segment(Span<byte> packet, in VirtioNetHeader h, IPacketSink sink, TunCounters counters)
    {
        // Our own reading of the headers (not hdr_len, which the kernel only hints): where the transport
        // header starts (csum_start), which protocol, and how long the headers are.
        bool tcp = h.Gso != VirtioNetHeader.GsoUdpL4;
        int version = packet[0] >> 4;
        int l4 = h.CsumStart;
        byte proto;
        if (version == 4)
        {
            if (h.Gso == VirtioNetHeader.GsoTcpV6 || packet.Length < 20) return -1;
            if (l4 != (packet[0] & 0x0F) * 4 || l4 < 20) return -1;
            proto = packet[9];
        }
        else if (version == 6)
        {
            // Extension headers would sit between; the kernel's TCP/UDP over IPv6 does not add any.
            if (h.Gso == VirtioNetHeader.GsoTcpV4 || l4 != 40) return -1;
            if (packet.Length < 40) return -1;
            proto = packet[6];
        }
        else return -1;
        if (proto != (tcp ? ProtoTcp : ProtoUdp)) return -1;

        int l4HeaderLength;
        if (tcp)
        {
            if (packet.Length < l4 + 20) return -1;
            l4HeaderLength = (packet[l4 + 12] >> 4) * 4;
            if (l4HeaderLength < 20) return -1;
        }
        else l4HeaderLength = 8;
        int headers = l4 + l4HeaderLength;
        int gso = h.GsoSize;
        if (headers > MaxHeaders || packet.Length < headers || gso == 0) return -1;
        if (tcp ? h.CsumOffset != 16 : h.CsumOffset != 6) return -1;

        int payload = packet.Length - headers;
        int count = payload == 0 ? 1 : (payload + gso - 1) / gso;
        Span<byte> template = stackalloc byte[MaxHeaders];
        packet[..headers].CopyTo(template);
        ushort firstId = version == 4 ? BinaryPrimitives.ReadUInt16BigEndian(template[4..]) : (ushort)0;
        uint firstSeq = tcp ? BinaryPrimitives.ReadUInt32BigEndian(template[(l4 + 4)..]) : 0;
        byte tcpFlags = tcp ? template[l4 + 13] : (byte)0;

        for (int i = 0; i < count; i++)
        {
            int chunk = Math.Min(gso, payload - i * gso);
            var seg = packet.Slice(i * gso, headers + chunk);
            if (i > 0) template[..headers].CopyTo(seg);
            if (version == 4)
            {
                BinaryPrimitives.WriteUInt16BigEndian(seg[2..], (ushort)seg.Length);
                BinaryPrimitives.WriteUInt16BigEndian(seg[4..], (ushort)(firstId + i));
                seg[10] = seg[11] = 0;
                BinaryPrimitives.WriteUInt16BigEndian(seg[10..], Checksum.Compute(seg[..l4]));
            }
            else BinaryPrimitives.WriteUInt16BigEndian(seg[4..], (ushort)(seg.Length - 40));

            var t = seg[l4..];
            int checksumAt;
            if (tcp)
            {
                BinaryPrimitives.WriteUInt32BigEndian(t[4..], firstSeq + (uint)(i * gso));
                byte f = tcpFlags;
                if (i < count - 1) f &= unchecked((byte)~(TcpFin | TcpPsh));
                if (i > 0) f &= unchecked((byte)~TcpCwr);
                t[13] = f;
                checksumAt = 16;
            }
            else
            {
                BinaryPrimitives.WriteUInt16BigEndian(t[4..], (ushort)t.Length);
                checksumAt = 6;
            }
            t[checksumAt] = t[checksumAt + 1] = 0;
            ushort pseudo = PseudoHeaderSum(seg, version == 4, t.Length, proto);
            ushort c = (ushort)~Checksum.Add(pseudo, Checksum.Sum(t));
            if (!tcp && c == 0) c = 0xFFFF;   // RFC 768: a computed 0 is sent as all ones
            BinaryPrimitives.WriteUInt16BigEndian(t[checksumAt..], c);
            Send(seg, sink, counters);
        }
        return count;
    }

    /// <summary>The TCP/UDP pseudo-header sum (not complemented) of an IPv4 or IPv6 packet's addresses.</summary>
    internal static ushort PseudoHeaderSum(ReadOnlySpan<byte> ip, bool v4, int l4Length, byte proto) => v4
        ? Checksum.PseudoHeaderSumV4(ip.Slice(12, 4), ip.Slice(16, 4), l4Length, proto)
        : Checksum.PseudoHeaderSumV6(ip.Slice(8, 16), ip.Slice(24, 16), l4Length, proto);

    private static void Send(ReadOnlySpan<byte> packet, IPacketSink sink, TunCounters counters)
    {
        counters.fromHostPackets++;
        counters.fromHostBytes += packet.Length;
        if (!sink.SendPacket(packet)) counters.noPeer++;
    }

    private static int Malformed(TunCounters counters)
    {
        counters.malformed++;
        return -1;
    }
}
