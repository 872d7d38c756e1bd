using System.Net;

namespace WgEngine.Tests.PacketPlane;

/// <summary>
/// Test-only packet builder and a deliberately plain Internet checksum (RFC 1071, word by word),
/// independent of WgEngine.PacketPlane.Checksum so the two can check each other.
/// </summary>
internal static class TestPackets
{
    public static readonly byte[] V4Client = IPAddress.Parse("10.8.0.2").GetAddressBytes();
    public static readonly byte[] V4Gateway = IPAddress.Parse("10.8.0.1").GetAddressBytes();
    public static readonly byte[] V6Client = IPAddress.Parse("fd00:8::2").GetAddressBytes();
    public static readonly byte[] V6Gateway = IPAddress.Parse("fd00:8::1").GetAddressBytes();

    /// <summary>Sum of big-endian 16-bit words, odd byte padded with zero, carries folded at the end.</summary>
    public static int ReferenceSum(ReadOnlySpan<byte> data)
    {
        long sum = 0;
        for (int i = 0; i < data.Length; i += 2)
            sum += (data[i] << 8) | (i + 1 < data.Length ? data[i + 1] : 0);
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (int)sum;
    }

    public static int ReferenceChecksum(ReadOnlySpan<byte> data) => ~ReferenceSum(data) & 0xFFFF;

    /// <summary>The IPv6 pseudo-header (RFC 8200 §8.1) followed by the upper-layer message, as one buffer.</summary>
    public static byte[] WithPseudoHeaderV6(ReadOnlySpan<byte> src, ReadOnlySpan<byte> dst, byte nextHeader, ReadOnlySpan<byte> upper)
    {
        var b = new byte[40 + upper.Length];
        src.CopyTo(b);
        dst.CopyTo(b.AsSpan(16));
        b[32] = (byte)(upper.Length >> 24); b[33] = (byte)(upper.Length >> 16);
        b[34] = (byte)(upper.Length >> 8); b[35] = (byte)upper.Length;
        b[39] = nextHeader;
        upper.CopyTo(b.AsSpan(40));
        return b;
    }

    public static bool V4HeaderValid(byte[] p) => ReferenceSum(p.AsSpan(0, (p[0] & 15) * 4)) == 0xFFFF;

    public static bool V4IcmpValid(byte[] p, int totalLength)
    {
        int ihl = (p[0] & 15) * 4;
        return ReferenceSum(p.AsSpan(ihl, totalLength - ihl)) == 0xFFFF;
    }

    public static bool V6IcmpValid(byte[] p, int totalLength) =>
        ReferenceSum(WithPseudoHeaderV6(p.AsSpan(8, 16), p.AsSpan(24, 16), 58, p.AsSpan(40, totalLength - 40))) == 0xFFFF;

    /// <summary>An ICMPv4 echo message with a correct checksum.</summary>
    public static byte[] IcmpV4Echo(byte type, ushort id, ushort seq, ReadOnlySpan<byte> data, byte code = 0)
    {
        var m = EchoMessage(type, code, id, seq, data);
        int c = ReferenceChecksum(m);
        m[2] = (byte)(c >> 8); m[3] = (byte)c;
        return m;
    }

    /// <summary>
    /// IPv4 packet around <paramref name="payload"/> with a correct header checksum, in a buffer
    /// <paramref name="padding"/> bytes longer than the packet (filled with 0xEE, like junk after it).
    /// </summary>
    public static byte[] IPv4(byte[] src, byte[] dst, byte protocol, ReadOnlySpan<byte> payload, int padding = 0,
        byte ttl = 57, ushort flagsAndOffset = 0x4000, ushort id = 0x1c46, byte tos = 0, byte[]? options = null)
    {
        int hl = 20 + (options?.Length ?? 0);
        int total = hl + payload.Length;
        var p = new byte[total + padding];
        p.AsSpan(total).Fill(0xEE);
        p[0] = (byte)(0x40 | (hl / 4)); p[1] = tos;
        p[2] = (byte)(total >> 8); p[3] = (byte)total;
        p[4] = (byte)(id >> 8); p[5] = (byte)id;
        p[6] = (byte)(flagsAndOffset >> 8); p[7] = (byte)flagsAndOffset;
        p[8] = ttl; p[9] = protocol;
        src.CopyTo(p, 12); dst.CopyTo(p, 16);
        options?.CopyTo(p, 20);
        int c = ReferenceChecksum(p.AsSpan(0, hl));
        p[10] = (byte)(c >> 8); p[11] = (byte)c;
        payload.CopyTo(p.AsSpan(hl));
        return p;
    }

    /// <summary>IPv6 packet carrying an ICMPv6 echo message with a correct checksum, padded like <see cref="IPv4"/>.</summary>
    public static byte[] IPv6Echo(byte[] src, byte[] dst, byte type, ushort id, ushort seq, ReadOnlySpan<byte> data,
        int padding = 0, byte hopLimit = 57, byte code = 0, uint flowLabel = 0xabcde)
    {
        var m = EchoMessage(type, code, id, seq, data);
        int c = ReferenceChecksum(WithPseudoHeaderV6(src, dst, 58, m));
        m[2] = (byte)(c >> 8); m[3] = (byte)c;
        return IPv6(src, dst, 58, m, padding, hopLimit, flowLabel);
    }

    public static byte[] IPv6(byte[] src, byte[] dst, byte nextHeader, ReadOnlySpan<byte> payload, int padding = 0,
        byte hopLimit = 57, uint flowLabel = 0xabcde)
    {
        int total = 40 + payload.Length;
        var p = new byte[total + padding];
        p.AsSpan(total).Fill(0xEE);
        p[0] = 0x60; p[1] = (byte)(flowLabel >> 16 & 0x0F); p[2] = (byte)(flowLabel >> 8); p[3] = (byte)flowLabel;
        p[4] = (byte)(payload.Length >> 8); p[5] = (byte)payload.Length;
        p[6] = nextHeader; p[7] = hopLimit;
        src.CopyTo(p, 8); dst.CopyTo(p, 24);
        payload.CopyTo(p.AsSpan(40));
        return p;
    }

    /// <summary>WireGuard pads plaintext to a multiple of 16 (whitepaper §5.4.6).</summary>
    public static int WireGuardPadding(int length) => (16 - length % 16) % 16;

    public static byte[] Data(int length, int seed)
    {
        var d = new byte[length];
        new Random(seed).NextBytes(d);
        return d;
    }

    public static byte[] FromHex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    private static byte[] EchoMessage(byte type, byte code, ushort id, ushort seq, ReadOnlySpan<byte> data)
    {
        var m = new byte[8 + data.Length];
        m[0] = type; m[1] = code;
        m[4] = (byte)(id >> 8); m[5] = (byte)id;
        m[6] = (byte)(seq >> 8); m[7] = (byte)seq;
        data.CopyTo(m.AsSpan(8));
        return m;
    }
}
