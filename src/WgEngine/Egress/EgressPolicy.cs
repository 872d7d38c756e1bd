using System.Net;
using System.Net.Sockets;
using WgEngine.Net;

namespace WgEngine.Egress;

/// <summary>
/// Which destinations the userspace egress may dial from the host. With no allow list: anything but the
/// host's loopback, link-local, multicast, broadcast and unspecified addresses, so that a peer cannot use
/// the gateway to reach services bound to the gateway host's 127.0.0.1 or a cloud metadata address.
/// An explicit allow list is taken as given (an operator may allow 127.0.0.0/8 on purpose).
/// </summary>
public sealed class EgressPolicy
{
    private readonly IReadOnlyList<IpPrefix>? _allow;
    private readonly (byte[] Network, int Bits)[]? _allowBytes;   // the allow list as raw bytes for the per-packet check

    public EgressPolicy(IReadOnlyList<IpPrefix>? allow)
    {
        _allow = allow;
        if (allow is null) return;
        _allowBytes = new (byte[], int)[allow.Count];
        for (int i = 0; i < allow.Count; i++)
        {
            var p = allow[i];
            var a = p.Address.IsIPv4MappedToIPv6 ? p.Address.MapToIPv4() : p.Address;
            _allowBytes[i] = (IpPrefix.Mask(a, p.Bits).GetAddressBytes(), Math.Min(p.Bits, a.GetAddressBytes().Length * 8));
        }
    }

    /// <summary>The same decision for a raw 4- or 16-byte address from a packet header, without allocating.</summary>
    public bool IsAllowed(ReadOnlySpan<byte> destination)
    {
        if (destination.Length == 16 && IsV4Mapped(destination)) destination = destination.Slice(12);
        if (destination.Length is not (4 or 16)) return false;
        if (_allowBytes is not null)
        {
            foreach (var (network, bits) in _allowBytes)
                if (network.Length == destination.Length && PrefixMatches(network, destination, bits)) return true;
            return false;
        }
        return !IsHostOnly(destination);
    }

    public bool IsAllowed(IPAddress destination)
    {
        if (destination.IsIPv4MappedToIPv6) destination = destination.MapToIPv4();
        if (_allow is not null)
        {
            foreach (var p in _allow)
                if (p.Contains(destination)) return true;
            return false;
        }
        return !IsHostOnly(destination);
    }

    /// <summary>Loopback, link-local, multicast, broadcast, unspecified, for a raw 4- or 16-byte address.</summary>
    public static bool IsHostOnly(ReadOnlySpan<byte> a)
    {
        if (a.Length == 4)
            return a[0] == 127 || a[0] == 0 || (a[0] == 169 && a[1] == 254) || a[0] >= 224;
        if (IsV4Mapped(a)) return IsHostOnly(a.Slice(12));
        bool zeroHead = a.Slice(0, 15).IndexOfAnyExcept((byte)0) < 0;
        if (zeroHead && (a[15] == 0 || a[15] == 1)) return true;          // :: and ::1
        if (a[0] == 0xFF) return true;                                   // multicast ff00::/8
        return a[0] == 0xFE && (a[1] & 0xC0) is 0x80 or 0xC0;            // link-local fe80::/10, site-local fec0::/10
    }

    private static bool IsV4Mapped(ReadOnlySpan<byte> a) =>
        a.Length == 16 && a.Slice(0, 10).IndexOfAnyExcept((byte)0) < 0 && a[10] == 0xFF && a[11] == 0xFF;

    private static bool PrefixMatches(ReadOnlySpan<byte> network, ReadOnlySpan<byte> address, int bits)
    {
        int whole = bits >> 3;
        if (!network.Slice(0, whole).SequenceEqual(address.Slice(0, whole))) return false;
        int rest = bits & 7;
        if (rest == 0) return true;
        byte mask = (byte)(0xFF00 >> rest);
        return (address[whole] & mask) == network[whole];
    }

    /// <summary>Loopback, link-local, multicast, broadcast, unspecified.</summary>
    public static bool IsHostOnly(IPAddress a)
    {
        if (IPAddress.IsLoopback(a)) return true;
        if (a.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> b = stackalloc byte[4];
            a.TryWriteBytes(b, out _);
            return b[0] == 0                               // 0.0.0.0/8 "this network"
                || (b[0] == 169 && b[1] == 254)            // link-local (RFC 3927), includes cloud metadata
                || b[0] >= 224;                            // multicast, reserved, broadcast
        }
        return a.Equals(IPAddress.IPv6Any) || a.IsIPv6LinkLocal || a.IsIPv6Multicast || a.IsIPv6SiteLocal;
    }
}
