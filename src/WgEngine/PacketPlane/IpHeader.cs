using System.Buffers.Binary;

namespace WgEngine.PacketPlane;

/// <summary>
/// What <see cref="IpHeader.TryParse"/> learned about an inner IP packet. Holds offsets, not spans,
/// so it can be stored or passed around freely; the address spans are cut from the packet on demand
/// (no copy, no allocation).
/// </summary>
internal readonly struct IpPacketInfo
{
    internal IpPacketInfo(int version, int totalLength, int headerLength, byte protocol)
    {
        Version = version;
        TotalLength = totalLength;
        HeaderLength = headerLength;
        Protocol = protocol;
    }

    /// <summary>4 or 6.</summary>
    public int Version { get; }

    /// <summary>Real packet size from the header (IPv4 total length, IPv6 40 + payload length); bytes past it are padding.</summary>
    public int TotalLength { get; }

    /// <summary>IPv4: IHL * 4 (20..60). IPv6: 40 (extension headers are not walked).</summary>
    public int HeaderLength { get; }

    /// <summary>IPv4 protocol, or IPv6 next header (which may name an extension header).</summary>
    public byte Protocol { get; }

    public bool IsIPv4 => Version == 4;

    /// <summary>4 for IPv4, 16 for IPv6.</summary>
    public int AddressLength => Version == 4 ? 4 : 16;

    /// <summary>Offset of the source address: 12 in IPv4, 8 in IPv6.</summary>
    public int SourceOffset => Version == 4 ? 12 : 8;

    /// <summary>Offset of the destination address: 16 in IPv4, 24 in IPv6.</summary>
    public int DestinationOffset => Version == 4 ? 16 : 24;

    /// <summary>Length of what follows the (base) header, up to <see cref="TotalLength"/>.</summary>
    public int PayloadLength => TotalLength - HeaderLength;

    public ReadOnlySpan<byte> Source(ReadOnlySpan<byte> packet) => packet.Slice(SourceOffset, AddressLength);
    public ReadOnlySpan<byte> Destination(ReadOnlySpan<byte> packet) => packet.Slice(DestinationOffset, AddressLength);
    public ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> packet) => packet.Slice(HeaderLength, PayloadLength);
}

/// <summary>Validating, allocation-free reader for IPv4/IPv6 headers of decrypted inner packets.</summary>
internal static class IpHeader
{
    public const int IPv4MinHeaderLength = 20;
    public const int IPv6HeaderLength = 40;

    /// <summary>
    /// Parses the IP header. False for anything malformed: unknown version, IPv4 IHL &lt; 5, header or
    /// total length beyond the buffer, total length below the header. The buffer may be longer than the
    /// packet (WireGuard pads plaintext to a multiple of 16); <see cref="IpPacketInfo.TotalLength"/> is the real size.
    /// Does not verify the IPv4 header checksum (see <see cref="IsIPv4HeaderChecksumValid"/>).
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> packet, out IpPacketInfo info)
    {
        info = default;
        if (packet.IsEmpty) return false;
        int version = packet[0] >> 4;
        if (version == 4)
        {
            if (packet.Length < IPv4MinHeaderLength) return false;
            int headerLength = (packet[0] & 0x0F) * 4;
            if (headerLength < IPv4MinHeaderLength || headerLength > packet.Length) return false;
            int totalLength = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(2));
            if (totalLength < headerLength || totalLength > packet.Length) return false;
            info = new IpPacketInfo(4, totalLength, headerLength, packet[9]);
            return true;
        }
        if (version == 6)
        {
            if (packet.Length < IPv6HeaderLength) return false;
            int totalLength = IPv6HeaderLength + BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(4));
            if (totalLength > packet.Length) return false;
            info = new IpPacketInfo(6, totalLength, IPv6HeaderLength, packet[6]);
            return true;
        }
        return false;
    }

    /// <summary>Source address (4 or 16 bytes) of a packet, or empty if the header does not parse.</summary>
    public static ReadOnlySpan<byte> Source(ReadOnlySpan<byte> packet) =>
        TryParse(packet, out var info) ? info.Source(packet) : default;

    /// <summary>Destination address (4 or 16 bytes) of a packet, or empty if the header does not parse.</summary>
    public static ReadOnlySpan<byte> Destination(ReadOnlySpan<byte> packet) =>
        TryParse(packet, out var info) ? info.Destination(packet) : default;

    /// <summary>True if the IPv4 header (first <paramref name="headerLength"/> bytes) sums to 0xFFFF, checksum field included.</summary>
    public static bool IsIPv4HeaderChecksumValid(ReadOnlySpan<byte> packet, int headerLength) =>
        Checksum.IsValid(packet.Slice(0, headerLength));

    /// <summary>True if an IPv4 header marks a fragment (MF set or non-zero fragment offset).</summary>
    public static bool IsIPv4Fragment(ReadOnlySpan<byte> packet) =>
        (BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(6)) & 0x3FFF) != 0;
}
