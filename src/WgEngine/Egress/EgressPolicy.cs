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

    public EgressPolicy(IReadOnlyList<IpPrefix>? allow) => _allow = allow;

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
