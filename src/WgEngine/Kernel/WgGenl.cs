using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Net;

namespace WgEngine.Kernel;

/// <summary>The device as the kernel reports it; the private key copy is erased by Dispose.</summary>
internal sealed class KernelDevice : IDisposable
{
    public int IfIndex { get; set; }
    public string? IfName { get; set; }
    public WgPrivateKey? PrivateKey { get; set; }
    public WgKey? PublicKey { get; set; }
    public int ListenPort { get; set; }
    public uint Fwmark { get; set; }
    public List<DevicePeer> Peers { get; } = [];
    public void Dispose() => PrivateKey?.Dispose();
}

/// <summary>One peer change of a WG_CMD_SET_DEVICE.</summary>
internal sealed record DevicePeerChange
{
    public required WgKey PublicKey { get; init; }
    public bool Remove { get; init; }
    public bool UpdateOnly { get; init; }
    /// <summary>Replace the allowed IPs with <see cref="AllowedIPs"/> (instead of adding to them).</summary>
    public bool ReplaceAllowedIPs { get; init; }
    /// <summary>Null leaves it; all zeros removes it.</summary>
    public WgKey? PresharedKey { get; init; }
    public IPEndPoint? Endpoint { get; init; }
    public int? PersistentKeepalive { get; init; }
    public IReadOnlyList<IpPrefix> AllowedIPs { get; init; } = [];
}

/// <summary>A WG_CMD_SET_DEVICE request before it is split into messages.</summary>
internal sealed class KernelDeviceChange
{
    /// <summary>Not owned: the caller keeps and disposes it.</summary>
    public WgPrivateKey? PrivateKey { get; init; }
    public int? ListenPort { get; init; }
    public uint? Fwmark { get; init; }
    public bool ReplacePeers { get; init; }
    public IReadOnlyList<DevicePeerChange> Peers { get; init; } = [];
}

/// <summary>
/// The WireGuard generic netlink family's codec. Constants from the kernel's uapi header
/// include/uapi/linux/wireguard.h (installed as /usr/include/linux/wireguard.h); the fragmenting
/// follows what that header documents for large configurations.
/// </summary>
internal static class WgGenl
{
    public const string FamilyName = "wireguard";
    public const byte Version = 1;                 // WG_GENL_VERSION
    public const byte CmdGetDevice = 0, CmdSetDevice = 1;
    public const ushort DevIfIndex = 1, DevIfName = 2, DevPrivateKey = 3, DevPublicKey = 4, DevFlags = 5, DevListenPort = 6, DevFwmark = 7, DevPeers = 8;
    public const uint DevFReplacePeers = 1;
    public const ushort PeerPublicKey = 1, PeerPresharedKey = 2, PeerFlags = 3, PeerEndpoint = 4, PeerKeepalive = 5,
        PeerLastHandshake = 6, PeerRxBytes = 7, PeerTxBytes = 8, PeerAllowedIps = 9, PeerProtocolVersion = 10;
    public const uint PeerFRemoveMe = 1, PeerFReplaceAllowedIps = 2, PeerFUpdateOnly = 4;
    public const ushort AipFamily = 1, AipAddr = 2, AipCidr = 3;
    public const ushort AfInet = 2, AfInet6 = 10;
    /// <summary>Bytes per message: the ceiling the kernel's own tool (wg, via libmnl's MNL_SOCKET_BUFFER_SIZE) uses.</summary>
    public const int MaxMessage = 8192;

    // Generic netlink controller (linux/genetlink.h).
    public const ushort GenlIdCtrl = 0x10;
    public const byte CtrlCmdGetFamily = 3;
    public const ushort CtrlAttrFamilyId = 1, CtrlAttrFamilyName = 2;

    public static NetlinkWriter NewGenl(ushort family, byte cmd, ushort flags, int capacity = MaxMessage)
    {
        var w = new NetlinkWriter(capacity, family, flags);
        w.PutRaw([cmd, Version, 0, 0]);
        return w;
    }

    public static byte[] GetFamilyRequest(uint seq)
    {
        var w = new NetlinkWriter(64, GenlIdCtrl, Netlink.FRequest | Netlink.FAck);
        w.PutRaw([CtrlCmdGetFamily, 1, 0, 0]);
        w.PutString(CtrlAttrFamilyName, FamilyName);
        return w.Finish(seq);
    }

    public static ushort ParseFamilyId(NetlinkMessage m)
    {
        var a = new NetlinkAttrReader(GenlAttrs(m));
        while (a.Next()) if (a.Type == CtrlAttrFamilyId) return a.U16();
        throw new FormatException("the controller's answer has no family id");
    }

    public static byte[] GetDeviceRequest(ushort family, string ifName, uint seq)
    {
        var w = NewGenl(family, CmdGetDevice, Netlink.FRequest | Netlink.FDump, 64);
        w.PutString(DevIfName, ifName);
        return w.Finish(seq);
    }

    /// <summary>
    /// Splits a set request into messages of at most <paramref name="maxMessage"/> bytes: device
    /// settings and REPLACE_PEERS only in the first; a peer whose allowed IPs do not fit continues in
    /// the next message with its public key and the remaining IPs only (no flags, so that
    /// REPLACE_ALLOWEDIPS does not drop the IPs already sent). Each writer must be cleared after sending.
    /// </summary>
    public static List<NetlinkWriter> SetDeviceMessages(ushort family, string ifName, KernelDeviceChange change, int maxMessage = MaxMessage)
    {
        var messages = new List<NetlinkWriter>();
        int peer = 0, ip = 0;
        bool first = true;
        do
        {
            var w = NewGenl(family, CmdSetDevice, Netlink.FRequest | Netlink.FAck, maxMessage);
            bool ok = w.PutString(DevIfName, ifName);
            if (first)
            {
                if (change.PrivateKey is { } k) ok &= w.Put(DevPrivateKey, k.Span);
                if (change.ListenPort is { } port) ok &= w.PutU16(DevListenPort, (ushort)port);
                if (change.Fwmark is { } mark) ok &= w.PutU32(DevFwmark, mark);
                if (change.ReplacePeers) ok &= w.PutU32(DevFlags, DevFReplacePeers);
            }
            if (!ok) throw new ArgumentException("netlink message size too small for the device settings");
            if (peer < change.Peers.Count)
            {
                int peersNest = w.BeginNest(DevPeers);
                bool wrote = false;
                while (peer < change.Peers.Count)
                {
                    var p = change.Peers[peer];
                    int mark = w.Mark();
                    int written = TryWritePeer(w, p, ref ip);
                    if (written < 0) { w.Rewind(mark); break; }
                    wrote = true;
                    if (ip < p.AllowedIPs.Count) break;      // the rest of this peer's IPs go into the next message
                    peer++;
                    ip = 0;
                }
                if (!wrote) throw new ArgumentException($"netlink message size {maxMessage} too small for one peer");
                w.EndNest(peersNest);
            }
            messages.Add(w);
            first = false;
        } while (peer < change.Peers.Count);
        return messages;
    }

    /// <summary>Writes the peer (from allowed IP <paramref name="ip"/> on); -1 when not even its head and one IP fit.</summary>
    private static int TryWritePeer(NetlinkWriter w, DevicePeerChange p, ref int ip)
    {
        int nest = w.BeginNest(0);
        if (nest < 0) return -1;
        Span<byte> key = stackalloc byte[32];
        p.PublicKey.CopyTo(key);
        if (!w.Put(PeerPublicKey, key)) return -1;
        if (ip == 0)
        {
            uint flags = (p.Remove ? PeerFRemoveMe : 0) | (p.UpdateOnly ? PeerFUpdateOnly : 0) | (p.ReplaceAllowedIPs ? PeerFReplaceAllowedIps : 0);
            if (flags != 0 && !w.PutU32(PeerFlags, flags)) return -1;
            if (p.PresharedKey is { } psk)
            {
                psk.CopyTo(key);
                bool put = w.Put(PeerPresharedKey, key);
                key.Clear();
                if (!put) return -1;
            }
            if (p.Endpoint is { } ep && !w.Put(PeerEndpoint, EncodeSockaddr(ep))) return -1;
            if (p.PersistentKeepalive is { } ka && !w.PutU16(PeerKeepalive, (ushort)ka)) return -1;
        }
        int start = ip;
        if (ip < p.AllowedIPs.Count)
        {
            int ipsNest = w.BeginNest(PeerAllowedIps);
            if (ipsNest < 0) return -1;
            Span<byte> addr = stackalloc byte[16];
            while (ip < p.AllowedIPs.Count)
            {
                var a = p.AllowedIPs[ip];
                int mark = w.Mark();
                int one = w.BeginNest(0);
                a.Address.TryWriteBytes(addr, out int n);
                if (one < 0 || !w.PutU16(AipFamily, a.IsIPv4 ? AfInet : AfInet6) || !w.Put(AipAddr, addr[..n]) || !w.PutU8(AipCidr, (byte)a.Bits))
                {
                    w.Rewind(mark);
                    break;
                }
                w.EndNest(one);
                ip++;
            }
            if (ip == start) return -1;
            w.EndNest(ipsNest);
        }
        w.EndNest(nest);
        return ip - start;
    }

    /// <summary>Adds one dump message to <paramref name="device"/>; a peer split over messages (same
    /// public key again) is merged into the one already read.</summary>
    public static void ParseDeviceMessage(NetlinkMessage m, KernelDevice device, Dictionary<WgKey, DevicePeer> byKey)
    {
        var a = new NetlinkAttrReader(GenlAttrs(m));
        while (a.Next())
        {
            switch (a.Type)
            {
                case DevIfIndex: device.IfIndex = (int)a.U32(); break;
                case DevIfName: device.IfName = a.Str(); break;
                case DevPrivateKey:
                    if (a.Value.Length != 32) throw new FormatException("private key attribute is not 32 bytes");
                    device.PrivateKey?.Dispose();
                    device.PrivateKey = a.Value.ContainsAnyExcept((byte)0) ? WgPrivateKey.FromBytes(a.Value) : null;
                    break;
                case DevPublicKey:
                    if (a.Value.Length != 32) throw new FormatException("public key attribute is not 32 bytes");
                    var pub = new WgKey(a.Value);
                    device.PublicKey = pub.IsZero ? null : pub;
                    break;
                case DevListenPort: device.ListenPort = a.U16(); break;
                case DevFwmark: device.Fwmark = a.U32(); break;
                case DevPeers:
                    var peers = new NetlinkAttrReader(a.Value);
                    while (peers.Next()) ParsePeer(peers.Value, device, byKey);
                    break;
            }
        }
    }

    private static void ParsePeer(ReadOnlySpan<byte> attrs, KernelDevice device, Dictionary<WgKey, DevicePeer> byKey)
    {
        var a = new NetlinkAttrReader(attrs);
        DevicePeer? p = null;
        var pending = new List<IpPrefix>();
        WgKey? psk = null; IPEndPoint? ep = null; int? ka = null; DateTimeOffset? hs = null; long? rx = null, tx = null;
        while (a.Next())
        {
            switch (a.Type)
            {
                case PeerPublicKey:
                    if (a.Value.Length != 32) throw new FormatException("peer public key attribute is not 32 bytes");
                    var key = new WgKey(a.Value);
                    if (!byKey.TryGetValue(key, out p)) { p = new DevicePeer { PublicKey = key }; byKey[key] = p; device.Peers.Add(p); }
                    break;
                case PeerPresharedKey:
                    if (a.Value.Length != 32) throw new FormatException("preshared key attribute is not 32 bytes");
                    var k = new WgKey(a.Value);
                    psk = k.IsZero ? null : k;
                    break;
                case PeerEndpoint: ep = DecodeSockaddr(a.Value); break;
                case PeerKeepalive: ka = a.U16(); break;
                case PeerLastHandshake:
                    if (a.Value.Length != 16) throw new FormatException("handshake time attribute is not a 16-byte timespec");
                    long sec = BinaryPrimitives.ReadInt64LittleEndian(a.Value), nsec = BinaryPrimitives.ReadInt64LittleEndian(a.Value[8..]);
                    if (nsec is < 0 or >= 1_000_000_000 || sec < 0 || sec > 253402300799) throw new FormatException("handshake time out of range");
                    hs = sec == 0 && nsec == 0 ? null : DateTimeOffset.FromUnixTimeSeconds(sec).AddTicks(nsec / 100);
                    break;
                case PeerRxBytes: rx = (long)a.U64(); break;
                case PeerTxBytes: tx = (long)a.U64(); break;
                case PeerAllowedIps:
                    var ips = new NetlinkAttrReader(a.Value);
                    while (ips.Next()) pending.Add(ParseAllowedIp(ips.Value));
                    break;
            }
        }
        if (p is null) throw new FormatException("a peer without a public key");
        if (psk is not null) p.PresharedKey = psk;
        if (ep is not null) p.Endpoint = ep;
        if (ka is { } kv) p.PersistentKeepalive = kv;
        if (hs is not null) p.LastHandshake = hs;
        if (rx is { } r) p.RxBytes = r;
        if (tx is { } t) p.TxBytes = t;
        p.AllowedIPs.AddRange(pending);
    }

    private static IpPrefix ParseAllowedIp(ReadOnlySpan<byte> attrs)
    {
        var a = new NetlinkAttrReader(attrs);
        ushort family = 0; IPAddress? addr = null; int cidr = -1;
        while (a.Next())
        {
            switch (a.Type)
            {
                case AipFamily: family = a.U16(); break;
                case AipAddr:
                    if (a.Value.Length is not (4 or 16)) throw new FormatException($"allowed IP of {a.Value.Length} bytes");
                    addr = new IPAddress(a.Value);
                    break;
                case AipCidr: cidr = a.U8(); break;
            }
        }
        int bits = family == AfInet ? 32 : family == AfInet6 ? 128 : throw new FormatException($"allowed IP family {family}");
        if (addr is null || addr.GetAddressBytes().Length * 8 != bits || cidr < 0 || cidr > bits) throw new FormatException("incomplete or inconsistent allowed IP");
        return new IpPrefix(addr, cidr);
    }

    /// <summary>struct sockaddr_in / sockaddr_in6 (linux/in.h, linux/in6.h): family in host order, port and address in network order.</summary>
    public static byte[] EncodeSockaddr(IPEndPoint ep)
    {
        bool v4 = ep.AddressFamily == AddressFamily.InterNetwork;
        var b = new byte[v4 ? 16 : 28];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v4 ? AfInet : AfInet6);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), (ushort)ep.Port);
        if (v4) ep.Address.TryWriteBytes(b.AsSpan(4), out _);
        else
        {
            ep.Address.TryWriteBytes(b.AsSpan(8), out _);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(24), (uint)ep.Address.ScopeId);
        }
        return b;
    }

    public static IPEndPoint? DecodeSockaddr(ReadOnlySpan<byte> b)
    {
        if (b.Length < 2) throw new FormatException("truncated endpoint");
        ushort family = BinaryPrimitives.ReadUInt16LittleEndian(b);
        if (family == 0) return null;
        if (family == AfInet && b.Length >= 8)
            return new IPEndPoint(new IPAddress(b.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(b[2..]));
        if (family == AfInet6 && b.Length >= 28)
            return new IPEndPoint(new IPAddress(b.Slice(8, 16), BinaryPrimitives.ReadUInt32LittleEndian(b[24..])), BinaryPrimitives.ReadUInt16BigEndian(b[2..]));
        throw new FormatException($"endpoint of family {family} and {b.Length} bytes");
    }

    private static ReadOnlySpan<byte> GenlAttrs(NetlinkMessage m)
    {
        if (m.Payload.Length < 4) throw new FormatException("truncated generic netlink header");
        return m.Payload.Span[4..];
    }
}
