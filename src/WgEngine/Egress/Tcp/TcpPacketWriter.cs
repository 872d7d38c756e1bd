using System.Buffers.Binary;
using WgEngine.PacketPlane;

namespace WgEngine.Egress.Tcp;

/// <summary>Which TCP options a segment carries (SYN options only on SYN-ACKs; SACK blocks on ACKs).</summary>
internal ref struct TcpOptionsOut
{
    public ushort Mss;                 // 0 = none
    public int WindowScale;            // -1 = none
    public bool SackPermitted;
    public ReadOnlySpan<uint> Sack;    // pairs of (left, right) edges, at most 3 pairs

    public static TcpOptionsOut None => new() { WindowScale = -1 };
}

/// <summary>
/// Writes IPv4/IPv6 + TCP packets (RFC 791 / RFC 8200 / RFC 9293) into a caller's buffer, in two steps so
/// the payload can be copied straight from a ring buffer: <see cref="WriteHeaders"/>, payload at the returned
/// offset, then <see cref="Finish"/> for the checksums. Also writes ICMP destination-unreachable errors.
/// </summary>
internal static class TcpPacketWriter
{
    /// <summary>Largest IP+TCP header this writer emits (IPv6 40 + TCP 20 + options 40).</summary>
    public const int MaxHeaders = 100;

    /// <summary>
    /// Writes the IP and TCP headers for a segment from <paramref name="src"/>:<paramref name="srcPort"/> to
    /// <paramref name="dst"/>:<paramref name="dstPort"/> with <paramref name="payloadLength"/> bytes to follow;
    /// returns the payload's offset.
    /// </summary>
    public static int WriteHeaders(Span<byte> buf, ReadOnlySpan<byte> src, ReadOnlySpan<byte> dst, ushort srcPort, ushort dstPort,
        uint seq, uint ack, TcpFlags flags, ushort window, scoped in TcpOptionsOut options, int payloadLength)
    {
        bool v4 = src.Length == 4;
        int ipLen = v4 ? 20 : 40;
        var tcp = buf.Slice(ipLen);
        int optLen = WriteOptions(tcp.Slice(20), options);
        int tcpLen = 20 + optLen;
        int total = ipLen + tcpLen + payloadLength;
        if (v4)
        {
            buf[0] = 0x45; buf[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(buf.Slice(2), (ushort)total);
            BinaryPrimitives.WriteUInt32BigEndian(buf.Slice(4), 0x00004000); // id 0, DF (RFC 6864: atomic datagram)
            buf[8] = 64; buf[9] = 6; buf[10] = 0; buf[11] = 0;
            src.CopyTo(buf.Slice(12)); dst.CopyTo(buf.Slice(16));
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(buf, 0x60000000);
            BinaryPrimitives.WriteUInt16BigEndian(buf.Slice(4), (ushort)(total - 40));
            buf[6] = 6; buf[7] = 64;
            src.CopyTo(buf.Slice(8)); dst.CopyTo(buf.Slice(24));
        }
        BinaryPrimitives.WriteUInt16BigEndian(tcp, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp.Slice(2), dstPort);
        BinaryPrimitives.WriteUInt32BigEndian(tcp.Slice(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(tcp.Slice(8), ack);
        tcp[12] = (byte)((tcpLen / 4) << 4);
        tcp[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp.Slice(14), window);
        tcp[16] = 0; tcp[17] = 0; tcp[18] = 0; tcp[19] = 0; // checksum, urgent pointer
        return ipLen + tcpLen;
    }

    /// <summary>Fills in the IPv4 header checksum and the TCP checksum of a packet of <paramref name="totalLength"/> bytes.</summary>
    public static void Finish(Span<byte> buf, int totalLength)
    {
        bool v4 = buf[0] >> 4 == 4;
        int ipLen = v4 ? 20 : 40;
        var tcp = buf.Slice(ipLen, totalLength - ipLen);
        ushort pseudo;
        if (v4)
        {
            BinaryPrimitives.WriteUInt16BigEndian(buf.Slice(10), Checksum.Compute(buf.Slice(0, 20)));
            pseudo = Checksum.PseudoHeaderSumV4(buf.Slice(12, 4), buf.Slice(16, 4), tcp.Length, 6);
        }
        else pseudo = Checksum.PseudoHeaderSumV6(buf.Slice(8, 16), buf.Slice(24, 16), tcp.Length, 6);
        BinaryPrimitives.WriteUInt16BigEndian(tcp.Slice(16), (ushort)~Checksum.Add(pseudo, Checksum.Sum(tcp)));
    }

    /// <summary>A complete segment without payload; returns its length.</summary>
    public static int WriteControl(Span<byte> buf, ReadOnlySpan<byte> src, ReadOnlySpan<byte> dst, ushort srcPort, ushort dstPort,
        uint seq, uint ack, TcpFlags flags, ushort window, scoped in TcpOptionsOut options)
    {
        int n = WriteHeaders(buf, src, dst, srcPort, dstPort, seq, ack, flags, window, options, 0);
        Finish(buf, n);
        return n;
    }

    private static int WriteOptions(Span<byte> o, scoped in TcpOptionsOut opt)
    {
        int i = 0;
        if (opt.Mss != 0)
        {
            o[i] = 2; o[i + 1] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(o.Slice(i + 2), opt.Mss);
            i += 4;
        }
        if (opt.WindowScale >= 0)
        {
            o[i] = 1; o[i + 1] = 3; o[i + 2] = 3; o[i + 3] = (byte)opt.WindowScale;
            i += 4;
        }
        if (opt.SackPermitted)
        {
            o[i] = 1; o[i + 1] = 1; o[i + 2] = 4; o[i + 3] = 2;
            i += 4;
        }
        int blocks = Math.Min(opt.Sack.Length / 2, 3);
        if (blocks > 0)
        {
            o[i] = 1; o[i + 1] = 1; o[i + 2] = 5; o[i + 3] = (byte)(2 + 8 * blocks);
            i += 4;
            for (int b = 0; b < blocks * 2; b++, i += 4)
                BinaryPrimitives.WriteUInt32BigEndian(o.Slice(i), opt.Sack[b]);
        }
        return i;
    }

    /// <summary>
    /// An ICMP destination unreachable about <paramref name="original"/> (ICMPv4 type 3 code 1 "host
    /// unreachable", RFC 792; ICMPv6 type 1 code 3 "address unreachable", RFC 4443), sent in the name of
    /// the original destination, quoting as much of the original as RFC 1812 / RFC 4443 allow within
    /// <paramref name="buf"/>. <paramref name="original"/> may be a truncated copy of the packet (its headers
    /// at least). Returns the length, 0 if the original is too short to name its addresses.
    /// </summary>
    public static int WriteUnreachable(Span<byte> buf, ReadOnlySpan<byte> original)
    {
        if (original.IsEmpty) return 0;
        int version = original[0] >> 4;
        if (version == 4 ? original.Length < 20 : version != 6 || original.Length < 40) return 0;
        var quoteSrc = original;
        var ipSrc = version == 4 ? original.Slice(12, 4) : original.Slice(8, 16);
        var ipDst = version == 4 ? original.Slice(16, 4) : original.Slice(24, 16);
        if (version == 4)
        {
            int quote = Math.Min(quoteSrc.Length, Math.Min(576, buf.Length) - 28);
            int total = 28 + quote;
            buf[0] = 0x45; buf[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(buf.Slice(2), (ushort)total);
            BinaryPrimitives.WriteUInt32BigEndian(buf.Slice(4), 0);
            buf[8] = 64; buf[9] = 1; buf[10] = 0; buf[11] = 0;
            ipDst.CopyTo(buf.Slice(12));
            ipSrc.CopyTo(buf.Slice(16));
            BinaryPrimitives.WriteUInt16BigEndian(buf.Slice(10), Checksum.Compute(buf.Slice(0, 20)));
            var icmp = buf.Slice(20, 8 + quote);
            icmp[0] = 3; icmp[1] = 1;
            BinaryPrimitives.WriteUInt16BigEndian(icmp.Slice(2), 0);
            BinaryPrimitives.WriteUInt32BigEndian(icmp.Slice(4), 0);
            quoteSrc.Slice(0, quote).CopyTo(icmp.Slice(8));
            BinaryPrimitives.WriteUInt16BigEndian(icmp.Slice(2), Checksum.Compute(icmp));
            return total;
        }
        else
        {
            int quote = Math.Min(quoteSrc.Length, Math.Min(1280, buf.Length) - 48);
            int total = 48 + quote;
            BinaryPrimitives.WriteUInt32BigEndian(buf, 0x60000000);
            BinaryPrimitives.WriteUInt16BigEndian(buf.Slice(4), (ushort)(total - 40));
            buf[6] = 58; buf[7] = 64;
            ipDst.CopyTo(buf.Slice(8));
            ipSrc.CopyTo(buf.Slice(24));
            var icmp = buf.Slice(40, 8 + quote);
            icmp[0] = 1; icmp[1] = 3;
            BinaryPrimitives.WriteUInt16BigEndian(icmp.Slice(2), 0);
            BinaryPrimitives.WriteUInt32BigEndian(icmp.Slice(4), 0);
            quoteSrc.Slice(0, quote).CopyTo(icmp.Slice(8));
            BinaryPrimitives.WriteUInt16BigEndian(icmp.Slice(2), Checksum.ComputeV6(buf.Slice(8, 16), buf.Slice(24, 16), 58, icmp));
            return total;
        }
    }
}
