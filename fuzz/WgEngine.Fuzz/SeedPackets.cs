using System.Buffers.Binary;
using System.Net;
using WgEngine.PacketPlane;

namespace WgEngine.Fuzz;

/// <summary>Well-formed inner IP packets for the seed corpus (checksums per RFC 791/792, RFC 8200/4443).</summary>
internal static class SeedPackets
{
    public static byte[] EchoRequestV4(string src, string dst, ushort id, ushort seq, int dataLength)
    {
        var icmp = new byte[8 + dataLength];
        icmp[0] = IcmpEchoResponder.IcmpV4EchoRequest;
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), seq);
        for (int i = 8; i < icmp.Length; i++) icmp[i] = (byte)i;
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.Compute(icmp));
        return IPv4(src, dst, IcmpEchoResponder.ProtocolIcmp, icmp);
    }

    public static byte[] UdpV4(string src, string dst, ushort srcPort, ushort dstPort, int dataLength)
    {
        var udp = new byte[8 + dataLength];
        BinaryPrimitives.WriteUInt16BigEndian(udp, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(2), dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)udp.Length); // checksum 0: none (IPv4)
        return IPv4(src, dst, 17, udp);
    }

    public static byte[] EchoRequestV6(string src, string dst, ushort id, ushort seq, int dataLength)
    {
        var icmp = new byte[8 + dataLength];
        icmp[0] = IcmpEchoResponder.IcmpV6EchoRequest;
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), seq);
        for (int i = 8; i < icmp.Length; i++) icmp[i] = (byte)i;
        byte[] s = IPAddress.Parse(src).GetAddressBytes(), d = IPAddress.Parse(dst).GetAddressBytes();
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.ComputeV6(s, d, IcmpEchoResponder.NextHeaderIcmpV6, icmp));
        var p = new byte[40 + icmp.Length];
        p[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)icmp.Length);
        p[6] = IcmpEchoResponder.NextHeaderIcmpV6;
        p[7] = 64;
        s.CopyTo(p, 8);
        d.CopyTo(p, 24);
        icmp.CopyTo(p, 40);
        return p;
    }

    private static byte[] IPv4(string src, string dst, byte protocol, byte[] payload)
    {
        var p = new byte[20 + payload.Length];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), 0x1234);
        p[8] = 64;
        p[9] = protocol;
        IPAddress.Parse(src).GetAddressBytes().CopyTo(p, 12);
        IPAddress.Parse(dst).GetAddressBytes().CopyTo(p, 16);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum.Compute(p.AsSpan(0, 20)));
        payload.CopyTo(p, 20);
        return p;
    }

    /// <summary>Zero padding to a multiple of 16, as a WireGuard sender adds before sealing.</summary>
    public static byte[] Padded(byte[] packet)
    {
        var p = new byte[(packet.Length + 15) & ~15];
        packet.CopyTo(p, 0);
        return p;
    }
}
