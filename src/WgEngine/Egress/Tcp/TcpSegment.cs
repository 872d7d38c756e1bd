using System.Buffers.Binary;
using WgEngine.PacketPlane;

namespace WgEngine.Egress.Tcp;

[Flags]
internal enum TcpFlags : byte
{
    None = 0, Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10, Urg = 0x20,
}

/// <summary>
/// A parsed TCP segment inside an IPv4/IPv6 packet (RFC 9293 §3.1): header fields, the options this
/// stack understands (MSS, window scale, SACK-permitted, SACK blocks; RFC 7323 / RFC 2018) and views
/// of the addresses and payload. A view over the packet: valid only while the packet span is.
/// </summary>
internal ref struct TcpSegment
{
    public int Version;
    public ReadOnlySpan<byte> Source, Destination, Payload;
    /// <summary>Raw SACK blocks, 8 bytes each (left edge, right edge), as received.</summary>
    public ReadOnlySpan<byte> SackBlocks;
    public ushort SourcePort, DestinationPort, Window;
    public uint Seq, Ack;
    public TcpFlags Flags;
    /// <summary>MSS option, 0 when absent.</summary>
    public ushort Mss;
    /// <summary>Window scale shift option, -1 when absent.</summary>
    public int WindowScale;
    public bool SackPermitted;

    public readonly bool Has(TcpFlags f) => (Flags & f) != 0;

    /// <summary>Sequence space the segment occupies: payload plus one for SYN and one for FIN.</summary>
    public readonly int SeqLength => Payload.Length + (Has(TcpFlags.Syn) ? 1 : 0) + (Has(TcpFlags.Fin) ? 1 : 0);

    /// <summary>
    /// Parses an IP packet carrying TCP. False for anything malformed: not TCP, IPv4 fragment, bad data
    /// offset, or a TCP checksum that does not verify against the pseudo-header.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> packet, out TcpSegment seg)
    {
        seg = default;
        if (!IpHeader.TryParse(packet, out var ip) || ip.Protocol != 6) return false;
        if (ip.IsIPv4 && IpHeader.IsIPv4Fragment(packet)) return false;
        var tcp = ip.Payload(packet);
        if (tcp.Length < 20) return false;
        int dataOffset = (tcp[12] >> 4) * 4;
        if (dataOffset < 20 || dataOffset > tcp.Length) return false;
        var src = ip.Source(packet);
        var dst = ip.Destination(packet);
        ushort pseudo = ip.IsIPv4
            ? Checksum.PseudoHeaderSumV4(src, dst, tcp.Length, 6)
            : Checksum.PseudoHeaderSumV6(src, dst, tcp.Length, 6);
        if (Checksum.Add(pseudo, Checksum.Sum(tcp)) != 0xFFFF) return false;

        seg.Version = ip.Version;
        seg.Source = src;
        seg.Destination = dst;
        seg.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(tcp);
        seg.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(tcp.Slice(2));
        seg.Seq = BinaryPrimitives.ReadUInt32BigEndian(tcp.Slice(4));
        seg.Ack = BinaryPrimitives.ReadUInt32BigEndian(tcp.Slice(8));
        seg.Flags = (TcpFlags)(tcp[13] & 0x3F);
        seg.Window = BinaryPrimitives.ReadUInt16BigEndian(tcp.Slice(14));
        seg.Payload = tcp.Slice(dataOffset);
        seg.WindowScale = -1;
        return ParseOptions(tcp.Slice(20, dataOffset - 20), ref seg);
    }

    private static bool ParseOptions(ReadOnlySpan<byte> o, ref TcpSegment seg)
    {
        int i = 0;
        while (i < o.Length)
        {
            byte kind = o[i];
            if (kind == 0) break;                  // end of option list
            if (kind == 1) { i++; continue; }      // no-operation
            if (i + 1 >= o.Length) return false;
            int len = o[i + 1];
            if (len < 2 || i + len > o.Length) return false;
            var body = o.Slice(i + 2, len - 2);
            switch (kind)
            {
                case 2 when body.Length == 2: seg.Mss = BinaryPrimitives.ReadUInt16BigEndian(body); break;
                case 3 when body.Length == 1: seg.WindowScale = Math.Min((int)body[0], 14); break; // RFC 7323 §2.3: cap at 14
                case 4 when body.Length == 0: seg.SackPermitted = true; break;
                case 5 when body.Length % 8 == 0: seg.SackBlocks = body; break;
            }
            i += len;
        }
        return true;
    }
}
