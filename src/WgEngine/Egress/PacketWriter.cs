using System.Buffers.Binary;
using WgEngine.PacketPlane;

namespace WgEngine.Egress;

/// <summary>
/// Writes the IPv4/IPv6 header and the transport checksum of packets the egress sends back into the
/// tunnel. Callers lay the transport message out right after the header room, so a reply received
/// from a host socket becomes an IP packet in place, without a copy.
/// </summary>
internal static class PacketWriter
{
    public const byte ProtocolIcmp = 1, ProtocolTcp = 6, ProtocolUdp = 17, ProtocolIcmpV6 = 58;
    public const int UdpHeaderLength = 8;
    public const byte HopLimit = 64;

    public static int IpHeaderLength(bool ipv4) => ipv4 ? IpHeader.IPv4MinHeaderLength : IpHeader.IPv6HeaderLength;

    /// <summary>
    /// Writes an IP header into packet[..headerLength] for a payload of <paramref name="payloadLength"/>
    /// bytes that follows it. IPv4: DF set, identification 0 (RFC 6864 allows it for atomic datagrams),
    /// header checksum filled in.
    /// </summary>
    public static void WriteIpHeader(Span<byte> packet, ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, byte protocol, int payloadLength)
    {
        if (source.Length == 4)
        {
            var h = packet.Slice(0, IpHeader.IPv4MinHeaderLength);
            h[0] = 0x45;
            h[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(h.Slice(2), (ushort)(IpHeader.IPv4MinHeaderLength + payloadLength));
            BinaryPrimitives.WriteUInt32BigEndian(h.Slice(4), 0x0000_4000);   // id 0, DF, offset 0
            h[8] = HopLimit;
            h[9] = protocol;
            h[10] = 0; h[11] = 0;
            source.CopyTo(h.Slice(12));
            destination.CopyTo(h.Slice(16));
            BinaryPrimitives.WriteUInt16BigEndian(h.Slice(10), Checksum.Compute(h));
        }
        else
        {
            var h = packet.Slice(0, IpHeader.IPv6HeaderLength);
            BinaryPrimitives.WriteUInt32BigEndian(h, 0x6000_0000);
            BinaryPrimitives.WriteUInt16BigEndian(h.Slice(4), (ushort)payloadLength);
            h[6] = protocol;
            h[7] = HopLimit;
            source.CopyTo(h.Slice(8));
            destination.CopyTo(h.Slice(24));
        }
    }

    /// <summary>
    /// Writes a UDP header at packet[ipHeaderLength..] in front of the payload already there, plus the
    /// IP header, with the UDP checksum over the pseudo-header. Returns the packet's length.
    /// </summary>
    public static int WriteUdp(Span<byte> packet, ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination,
        ushort sourcePort, ushort destinationPort, int payloadLength)
    {
        int ipLen = IpHeaderLength(source.Length == 4);
        int udpLen = UdpHeaderLength + payloadLength;
        var udp = packet.Slice(ipLen, udpLen);
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.Slice(2), destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.Slice(4), (ushort)udpLen);
        udp[6] = 0; udp[7] = 0;
        ushort sum = Checksum.Add(PseudoHeaderSum(source, destination, udpLen, ProtocolUdp), Checksum.Sum(udp));
        ushort checksum = (ushort)~sum;
        // RFC 768: a computed 0 is sent as 0xFFFF (0 means "no checksum" in IPv4 and is invalid in IPv6).
        BinaryPrimitives.WriteUInt16BigEndian(udp.Slice(6), checksum == 0 ? (ushort)0xFFFF : checksum);
        WriteIpHeader(packet, source, destination, ProtocolUdp, udpLen);
        return ipLen + udpLen;
    }

    /// <summary>
    /// Fills in the checksum of the ICMP message at packet[ipHeaderLength..] (ICMPv6 with its
    /// pseudo-header) and writes the IP header. Returns the packet's length.
    /// </summary>
    public static int WriteIcmp(Span<byte> packet, ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, int icmpLength)
    {
        bool v4 = source.Length == 4;
        int ipLen = IpHeaderLength(v4);
        var icmp = packet.Slice(ipLen, icmpLength);
        icmp[2] = 0; icmp[3] = 0;
        ushort checksum = v4
            ? Checksum.Compute(icmp)
            : Checksum.ComputeV6(source, destination, ProtocolIcmpV6, icmp);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.Slice(2), checksum);
        WriteIpHeader(packet, source, destination, v4 ? ProtocolIcmp : ProtocolIcmpV6, icmpLength);
        return ipLen + icmpLength;
    }

    /// <summary>Pseudo-header sum for TCP/UDP in either IP version.</summary>
    public static ushort PseudoHeaderSum(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, int length, byte protocol) =>
        source.Length == 4
            ? Checksum.PseudoHeaderSumV4(source, destination, length, protocol)
            : Checksum.PseudoHeaderSumV6(source, destination, length, protocol);
}
