using System.Buffers.Binary;
using WgEngine.PacketPlane;

namespace WgEngine.Egress;

/// <summary>
/// ICMP "destination unreachable, administratively prohibited" for packets the egress policy refuses,
/// so that the peer's application fails at once instead of timing out. Only ever sent in answer to an
/// authenticated peer's packet, and never in answer to an ICMP error or a multicast destination
/// (RFC 1122 §3.2.2, RFC 4443 §2.4(e)).
/// </summary>
internal static class IcmpErrors
{
    // RFC 1812 §5.2.7.1 / RFC 792: type 3 code 13 "communication administratively prohibited".
    public const byte V4DestinationUnreachable = 3, V4AdministrativelyProhibited = 13;
    // RFC 4443 §3.1: type 1 code 1 "communication with destination administratively prohibited".
    public const byte V6DestinationUnreachable = 1, V6AdministrativelyProhibited = 1;

    /// <summary>IPv4 errors stay within 576 bytes (RFC 1812 §4.3.2.3); IPv6 within the minimum MTU 1280 (RFC 4443 §2.4(c)).</summary>
    public const int MaxV4 = 576, MaxV6 = 1280;
    private const int IcmpHeaderLength = 8;

    /// <summary>
    /// Writes the error answering <paramref name="original"/> (an IP packet whose header parsed as
    /// <paramref name="info"/>) into <paramref name="output"/> (at least MaxV6 bytes). The error comes from
    /// <paramref name="from"/> (the gateway's own address of that family, else the refused destination).
    /// Returns its length, or 0 when this packet must not be answered.
    /// </summary>
    public static int BuildProhibited(ReadOnlySpan<byte> original, in IpPacketInfo info, ReadOnlySpan<byte> from, Span<byte> output)
    {
        if (!MayAnswer(original, info)) return 0;
        bool v4 = info.IsIPv4;
        int ipLen = PacketWriter.IpHeaderLength(v4);
        int max = v4 ? MaxV4 : MaxV6;
        int quoted = Math.Min(info.TotalLength, max - ipLen - IcmpHeaderLength);
        var icmp = output.Slice(ipLen, IcmpHeaderLength + quoted);
        icmp[0] = v4 ? V4DestinationUnreachable : V6DestinationUnreachable;
        icmp[1] = v4 ? V4AdministrativelyProhibited : V6AdministrativelyProhibited;
        BinaryPrimitives.WriteUInt32BigEndian(icmp.Slice(4), 0);   // unused
        original.Slice(0, quoted).CopyTo(icmp.Slice(IcmpHeaderLength));
        return PacketWriter.WriteIcmp(output, from, info.Source(original), icmp.Length);
    }

    private static bool MayAnswer(ReadOnlySpan<byte> packet, in IpPacketInfo info)
    {
        var dst = info.Destination(packet);
        var src = info.Source(packet);
        if (info.IsIPv4)
        {
            if (dst[0] >= 224 || src[0] >= 224 || src[0] == 0) return false;           // multicast/broadcast/unspecified
            if ((BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(6)) & 0x1FFF) != 0) return false;   // not the first fragment
            if (info.Protocol == PacketWriter.ProtocolIcmp)
                return info.PayloadLength > 0 && IsIcmpV4Query(packet[info.HeaderLength]);
            return true;
        }
        if (dst[0] == 0xFF || src[0] == 0xFF) return false;
        if (info.Protocol == PacketWriter.ProtocolIcmpV6)
            return info.PayloadLength > 0 && packet[info.HeaderLength] >= 128;   // informational, not an error (RFC 4443 §2.1)
        return true;
    }

    /// <summary>Echo, timestamp, information, address mask requests: queries that may be answered with an error.</summary>
    private static bool IsIcmpV4Query(byte type) => type is 8 or 13 or 15 or 17;
}
