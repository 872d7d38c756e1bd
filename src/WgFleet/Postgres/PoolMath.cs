using System.Net;
using WgEngine.Net;

namespace WgFleet.Postgres;

/// <summary>Addresses as 128-bit numbers (IPv4 in the low 32 bits), for the pool allocation's "next free" arithmetic.</summary>
internal static class PoolMath
{
    public static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int len);
        UInt128 n = 0;
        for (int i = 0; i < len; i++) n = (n << 8) | b[i];
        return n;
    }

    /// <summary>Null past the family's last address.</summary>
    public static IPAddress? FromNumber(UInt128 n, bool ipv4)
    {
        if (ipv4 && n > uint.MaxValue) return null;
        int len = ipv4 ? 4 : 16;
        Span<byte> b = stackalloc byte[16];
        for (int i = len - 1; i >= 0; i--) { b[i] = (byte)(n & 0xFF); n >>= 8; }
        return new IPAddress(b[..len]);
    }

    public static IPAddress Last(IpPrefix p)
    {
        int hostBits = p.MaxBits - p.Bits;
        UInt128 span = hostBits == 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1;
        return FromNumber(ToNumber(p.Network.Address) | span, p.IsIPv4)!;
    }
}
