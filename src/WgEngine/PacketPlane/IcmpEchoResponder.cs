using System.Buffers.Binary;

namespace WgEngine.PacketPlane;

/// <summary>
/// Answers pings to the gateway's own addresses by turning a decrypted ICMPv4/ICMPv6 echo request
/// into the echo reply in place (no allocation, no copy of the echo data).
/// </summary>
internal static class IcmpEchoResponder
{
    public const byte ProtocolIcmp = 1;
    public const byte NextHeaderIcmpV6 = 58;
    public const byte IcmpV4EchoRequest = 8, IcmpV4EchoReply = 0;
    public const byte IcmpV6EchoRequest = 128, IcmpV6EchoReply = 129;
    public const byte ReplyHopLimit = 64;

    /// <summary>Type, code, checksum, identifier, sequence number (RFC 792, RFC 4443 §4).</summary>
    private const int EchoHeaderLength = 8;

    /// <summary>
    /// If <paramref name="packet"/>[..<paramref name="length"/>] is a valid echo request, rewrites it into
    /// the echo reply (addresses swapped, type 0/129, TTL/hop limit 64, checksums updated) and returns the
    /// reply's length: the request's IP total length, so WireGuard padding is dropped. Returns 0 (packet
    /// possibly untouched, never partially rewritten) for anything else; the caller drops and counts it.
    /// The caller must already have checked that the destination is one of the gateway's addresses.
    /// </summary>
    public static int TryBuildReply(Span<byte> packet, int length)
    {
        if ((uint)length > (uint)packet.Length) return 0;
        packet = packet.Slice(0, length);
        if (!IpHeader.TryParse(packet, out var info)) return 0;
        return info.IsIPv4 ? ReplyV4(packet, info) : ReplyV6(packet, info);
    }

    private static int ReplyV4(Span<byte> packet, in IpPacketInfo info)
    {
        // IPv4 options are not answered: RFC 1122 §3.2.2.6 wants record-route/timestamp updated and
        // source routes reversed, which this plane does not implement. Pings with options are rare.
        if (info.HeaderLength != IpHeader.IPv4MinHeaderLength) return 0;
        if (info.Protocol != ProtocolIcmp) return 0;
        if (!IpHeader.IsIPv4HeaderChecksumValid(packet, info.HeaderLength)) return 0;
        if (IpHeader.IsIPv4Fragment(packet)) return 0;

        Span<byte> icmp = packet.Slice(info.HeaderLength, info.PayloadLength);
        if (icmp.Length < EchoHeaderLength) return 0;
        if (icmp[0] != IcmpV4EchoRequest || icmp[1] != 0) return 0;
        if (!Checksum.IsValid(icmp)) return 0;

        SwapAddresses(packet, info.SourceOffset, 4);
        packet[8] = ReplyHopLimit;
        packet[10] = 0;
        packet[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(packet.Slice(10), Checksum.Compute(packet.Slice(0, info.HeaderLength)));

        SetTypeAndUpdateChecksum(icmp, IcmpV4EchoReply);
        if (icmp[2] == 0 && icmp[3] == 0)
        {
            // RFC 1624 §3 ambiguity: 0x0000 from the update is right when the message sums to 0xFFFF, but an
            // all-zero reply (id 0, seq 0, no data) sums to +0 and needs 0xFFFF. Rare, so recompute.
            BinaryPrimitives.WriteUInt16BigEndian(icmp.Slice(2), Checksum.Compute(icmp));
        }
        return info.TotalLength;
    }

    private static int ReplyV6(Span<byte> packet, in IpPacketInfo info)
    {
        // Extension headers are not walked: an echo request behind one is not answered.
        if (info.Protocol != NextHeaderIcmpV6) return 0;
        Span<byte> icmp = packet.Slice(info.HeaderLength, info.PayloadLength);
        if (icmp.Length < EchoHeaderLength) return 0;
        if (icmp[0] != IcmpV6EchoRequest || icmp[1] != 0) return 0;
        if (!Checksum.IsValidV6(info.Source(packet), info.Destination(packet), NextHeaderIcmpV6, icmp)) return 0;

        // Swapping source and destination leaves the pseudo-header sum unchanged (addition commutes),
        // so only the type change needs to reach the checksum. The pseudo-header's next header (58) keeps
        // the sum from ever being +0, so the update's 0x0000 result is always the right one here.
        SwapAddresses(packet, info.SourceOffset, 16);
        packet[7] = ReplyHopLimit;
        SetTypeAndUpdateChecksum(icmp, IcmpV6EchoReply);
        return info.TotalLength;
    }

    /// <summary>Sets the ICMP type (code stays 0) and patches the checksum incrementally (RFC 1624).</summary>
    private static void SetTypeAndUpdateChecksum(Span<byte> icmp, byte newType)
    {
        ushort oldWord = BinaryPrimitives.ReadUInt16BigEndian(icmp);
        icmp[0] = newType;
        ushort newWord = BinaryPrimitives.ReadUInt16BigEndian(icmp);
        ushort old = BinaryPrimitives.ReadUInt16BigEndian(icmp.Slice(2));
        BinaryPrimitives.WriteUInt16BigEndian(icmp.Slice(2), Checksum.Update(old, oldWord, newWord));
    }

    /// <summary>Swaps the source and destination addresses, which sit back to back in both IP versions.</summary>
    private static void SwapAddresses(Span<byte> packet, int sourceOffset, int addressLength)
    {
        Span<byte> src = packet.Slice(sourceOffset, addressLength);
        Span<byte> dst = packet.Slice(sourceOffset + addressLength, addressLength);
        for (int i = 0; i < addressLength; i++)
            (src[i], dst[i]) = (dst[i], src[i]);
    }
}
