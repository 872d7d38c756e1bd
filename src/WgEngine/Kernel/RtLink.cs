using System.Buffers.Binary;
using WgEngine.Contracts;
using WgEngine.Net;

namespace WgEngine.Kernel;

/// <summary>
/// rtnetlink for the WireGuard link: create (IFLA_INFO_KIND "wireguard"), delete, MTU, addresses, up.
/// Layouts from linux/rtnetlink.h (ifinfomsg 16 bytes, ifaddrmsg 8 bytes), linux/if_link.h, linux/if_addr.h.
/// </summary>
internal static class RtLink
{
    private const ushort NewLink = 16, DelLink = 17, NewAddr = 20;
    private const ushort IflaIfName = 3, IflaMtu = 4, IflaLinkInfo = 18, IflaInfoKind = 1;
    private const ushort IfaAddress = 1, IfaLocal = 2;
    private const uint IffUp = 1;

    public static byte[] NewLinkRequest(string name, uint seq)
    {
        var w = new NetlinkWriter(256, NewLink, Netlink.FRequest | Netlink.FAck | Netlink.FCreate | Netlink.FExcl);
        w.PutRaw(IfInfo(0, 0, 0));
        w.PutString(IflaIfName, name);
        int info = w.BeginNest(IflaLinkInfo);
        w.PutString(IflaInfoKind, WgGenl.FamilyName);
        w.EndNest(info);
        return w.Finish(seq);
    }

    public static byte[] DelLinkRequest(int ifIndex, uint seq)
    {
        var w = new NetlinkWriter(64, DelLink, Netlink.FRequest | Netlink.FAck);
        w.PutRaw(IfInfo(ifIndex, 0, 0));
        return w.Finish(seq);
    }

    /// <summary>Sets the MTU and, with <paramref name="up"/>, IFF_UP.</summary>
    public static byte[] SetLinkRequest(int ifIndex, int? mtu, bool up, uint seq)
    {
        var w = new NetlinkWriter(64, NewLink, Netlink.FRequest | Netlink.FAck);
        w.PutRaw(IfInfo(ifIndex, up ? IffUp : 0, up ? IffUp : 0));
        if (mtu is { } m) w.PutU32(IflaMtu, (uint)m);
        return w.Finish(seq);
    }

    /// <summary>Adds (or replaces) an address with its prefix, as `ip address replace` does.</summary>
    public static byte[] NewAddrRequest(int ifIndex, IpPrefix address, uint seq)
    {
        var w = new NetlinkWriter(96, NewAddr, Netlink.FRequest | Netlink.FAck | Netlink.FCreate | Netlink.FReplace);
        var h = new byte[8];
        h[0] = (byte)(address.IsIPv4 ? WgGenl.AfInet : WgGenl.AfInet6);
        h[1] = (byte)address.Bits;
        BinaryPrimitives.WriteInt32LittleEndian(h.AsSpan(4), ifIndex);
        w.PutRaw(h);
        var bytes = address.Address.GetAddressBytes();
        w.Put(IfaLocal, bytes);
        w.Put(IfaAddress, bytes);
        return w.Finish(seq);
    }

    private static byte[] IfInfo(int index, uint flags, uint change)
    {
        var h = new byte[16];   // family AF_UNSPEC, type 0
        BinaryPrimitives.WriteInt32LittleEndian(h.AsSpan(4), index);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(12), change);
        return h;
    }

    /// <summary>The interface index of <paramref name="name"/>; 0 when there is none.</summary>
    public static int IndexOf(string name) => (int)NetlinkSocket.if_nametoindex(name);
}
