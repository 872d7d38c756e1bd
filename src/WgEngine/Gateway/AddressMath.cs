using System.Net;
using System.Net.Sockets;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>IP addresses as 128-bit integers (IPv4 in the low 32 bits), for pool and overlap arithmetic.</summary>
internal static class AddressMath
{
    public static UInt128 ToNumber(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int len);
        UInt128 n = 0;
        for (int i = 0; i < len; i++) n = (n << 8) | b[i];
        return n;
    }

    public static IPAddress ToAddress(UInt128 n, bool ipv4)
    {
        int len = ipv4 ? 4 : 16;
        Span<byte> b = stackalloc byte[16];
        for (int i = len - 1; i >= 0; i--) { b[i] = (byte)(n & 0xFF); n >>= 8; }
        return new IPAddress(b[..len]);
    }

    /// <summary>The network number of a prefix (host bits cleared).</summary>
    public static UInt128 Network(IpPrefix p) => ToNumber(p.Address) & NetMask(p.Bits, p.MaxBits);

    public static UInt128 NetMask(int bits, int maxBits)
    {
        if (bits == 0) return 0;
        UInt128 all = maxBits == 32 ? uint.MaxValue : UInt128.MaxValue;
        return (all << (maxBits - bits)) & all;
    }

    public static bool IsV4(IPAddress a) =>
        a.AddressFamily == AddressFamily.InterNetwork || a.IsIPv4MappedToIPv6;
}
