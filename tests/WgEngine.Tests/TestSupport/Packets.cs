using System.Buffers.Binary;
using System.Net;

namespace WgEngine.Tests.TestSupport;

/// <summary>Builds IP packets for device tests, with a plain RFC 1071 checksum written here for tests.</summary>
internal static class Packets
{
    public static byte[] EchoRequestV4(string src, string dst, ushort id, ushort seq, int payloadLength = 32)
    {
        var p = new byte[20 + 8 + payloadLength];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[8] = 64;
        p[9] = 1;
        IPAddress.Parse(src).TryWriteBytes(p.AsSpan(12, 4), out _);
        IPAddress.Parse(dst).TryWriteBytes(p.AsSpan(16, 4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum(p.AsSpan(0, 20)));
        p[20] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(24), id);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(26), seq);
        for (int i = 0; i < payloadLength; i++) p[28 + i] = (byte)i;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(22), Checksum(p.AsSpan(20)));
        return p;
    }

    /// <summary>A UDP datagram in IPv4 (checksum 0 = none, allowed for IPv4).</summary>
    public static byte[] UdpV4(string src, string dst, ushort srcPort, ushort dstPort, byte[] payload)
    {
        var p = new byte[28 + payload.Length];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[8] = 64;
        p[9] = 17;
        IPAddress.Parse(src).TryWriteBytes(p.AsSpan(12, 4), out _);
        IPAddress.Parse(dst).TryWriteBytes(p.AsSpan(16, 4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum(p.AsSpan(0, 20)));
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(20), srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(22), dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(24), (ushort)(8 + payload.Length));
        payload.CopyTo(p, 28);
        return p;
    }

    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < data.Length; i += 2) sum += (uint)(data[i] << 8 | data[i + 1]);
        if ((data.Length & 1) == 1) sum += (uint)(data[^1] << 8);
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }
}
