using System.Buffers.Binary;
using System.Net;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Kernel;
using WgEngine.Net;

namespace WgEngine.Tests.Kernel;

/// <summary>The netlink codec's byte layouts (linux/netlink.h, linux/wireguard.h), fragmenting and dump
/// coalescing, and refusal of malformed answers, on the host (the real module is tested in the guest: tests/Kernel).</summary>
public class NetlinkCodecTests
{
    private const ushort Family = 0x1234;

    [Fact]
    public void GetDeviceRequestHasTheHeaderGenlHeaderAndIfNameAttribute()
    {
        var m = WgGenl.GetDeviceRequest(Family, "wg0", 7);
        Assert.Equal(m.Length, (int)BinaryPrimitives.ReadUInt32LittleEndian(m));
        Assert.Equal(Family, BinaryPrimitives.ReadUInt16LittleEndian(m.AsSpan(4)));
        Assert.Equal(Netlink.FRequest | Netlink.FDump, BinaryPrimitives.ReadUInt16LittleEndian(m.AsSpan(6)));
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(8)));
        Assert.Equal(new byte[] { WgGenl.CmdGetDevice, 1, 0, 0 }, m[16..20]);
        // nla_len 8 (4 + "wg0\0"), nla_type 2 (WGDEVICE_A_IFNAME), then the string padded to 4.
        Assert.Equal(new byte[] { 8, 0, 2, 0, (byte)'w', (byte)'g', (byte)'0', 0 }, m[20..28]);
        Assert.Equal(28, m.Length);
    }

    [Fact]
    public void SetDeviceEncodesPeerWithNestedFlagsEndpointAndAllowedIps()
    {
        var key = new WgKey(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());
        var change = new KernelDeviceChange
        {
            ListenPort = 51820, Fwmark = 5, ReplacePeers = true,
            Peers = [new DevicePeerChange { PublicKey = key, ReplaceAllowedIPs = true, Endpoint = IPEndPoint.Parse("192.0.2.1:51820"), PersistentKeepalive = 25, AllowedIPs = [IpPrefix.Parse("10.0.0.2/32")] }],
        };
        var w = Assert.Single(WgGenl.SetDeviceMessages(Family, "wg0", change));
        var msg = Assert.Single(NetlinkMessage.Split(w.Finish(1)));
        var dev = Attrs(msg.Payload.Span[4..]);
        Assert.Equal((ushort)51820, BinaryPrimitives.ReadUInt16LittleEndian(dev[WgGenl.DevListenPort]));
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(dev[WgGenl.DevFwmark]));
        Assert.Equal(WgGenl.DevFReplacePeers, BinaryPrimitives.ReadUInt32LittleEndian(dev[WgGenl.DevFlags]));
        var peers = AttrList(dev[WgGenl.DevPeers]);
        var peer = Attrs(Assert.Single(peers));
        Assert.Equal(key.ToArray(), peer[WgGenl.PeerPublicKey]);
        Assert.Equal(WgGenl.PeerFReplaceAllowedIps, BinaryPrimitives.ReadUInt32LittleEndian(peer[WgGenl.PeerFlags]));
        // sockaddr_in: family 2 host order, port 51820 network order (0xCA6C), address, 8 zero bytes.
        Assert.Equal(new byte[] { 2, 0, 0xCA, 0x6C, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, peer[WgGenl.PeerEndpoint]);
        Assert.Equal((ushort)25, BinaryPrimitives.ReadUInt16LittleEndian(peer[WgGenl.PeerKeepalive]));
        var ip = Attrs(Assert.Single(AttrList(peer[WgGenl.PeerAllowedIps])));
        Assert.Equal(WgGenl.AfInet, BinaryPrimitives.ReadUInt16LittleEndian(ip[WgGenl.AipFamily]));
        Assert.Equal(new byte[] { 10, 0, 0, 2 }, ip[WgGenl.AipAddr]);
        Assert.Equal(new byte[] { 32 }, ip[WgGenl.AipCidr]);
        // Nested attributes carry NLA_F_NESTED (the kernel's strict parsing of new attributes wants it).
        int devPeersAt = FindAttr(msg.Payload.Span[4..], WgGenl.DevPeers);
        Assert.NotEqual(0, BinaryPrimitives.ReadUInt16LittleEndian(msg.Payload.Span[(4 + devPeersAt + 2)..]) & Netlink.NlaFNested);
    }

    [Fact]
    public void ManyPeersAreSplitUnderTheSizeLimitWithReplaceFlagsOnlyFirst()
    {
        var peers = Enumerable.Range(0, 2000).Select(i => new DevicePeerChange
        {
            PublicKey = Key(i), ReplaceAllowedIPs = true, PresharedKey = default(WgKey),
            AllowedIPs = [new IpPrefix(new IPAddress([10, 1, (byte)(i >> 8), (byte)i]), 32)],
        }).ToList();
        var messages = WgGenl.SetDeviceMessages(Family, "wg0", new KernelDeviceChange { ReplacePeers = true, ListenPort = 1, Peers = peers });
        Assert.True(messages.Count > 10);
        var seen = new List<WgKey>();
        for (int i = 0; i < messages.Count; i++)
        {
            var bytes = messages[i].Finish((uint)i);
            Assert.True(bytes.Length <= WgGenl.MaxMessage);
            var dev = Attrs(NetlinkMessage.Split(bytes)[0].Payload.Span[4..]);
            Assert.Equal(i == 0, dev.ContainsKey(WgGenl.DevFlags));
            Assert.Equal(i == 0, dev.ContainsKey(WgGenl.DevListenPort));
            Assert.Equal("wg0\0"u8.ToArray(), dev[WgGenl.DevIfName]);
            foreach (var p in AttrList(dev[WgGenl.DevPeers])) seen.Add(new WgKey(Attrs(p)[WgGenl.PeerPublicKey]));
        }
        Assert.Equal(peers.Select(p => p.PublicKey), seen);   // each peer once, in order
    }

    [Fact]
    public void APeerWithManyAllowedIpsContinuesInTheNextMessageWithoutFlags()
    {
        var ips = Enumerable.Range(0, 1000).Select(i => new IpPrefix(new IPAddress([10, 2, (byte)(i >> 8), (byte)i]), 32)).ToList();
        var change = new KernelDeviceChange { Peers = [new DevicePeerChange { PublicKey = Key(1), ReplaceAllowedIPs = true, UpdateOnly = true, AllowedIPs = ips }] };
        var messages = WgGenl.SetDeviceMessages(Family, "wg0", change);
        Assert.True(messages.Count >= 3);
        var got = new List<IpPrefix>();
        for (int i = 0; i < messages.Count; i++)
        {
            var dev = Attrs(NetlinkMessage.Split(messages[i].Finish(1))[0].Payload.Span[4..]);
            var peer = Attrs(Assert.Single(AttrList(dev[WgGenl.DevPeers])));
            Assert.Equal(Key(1).ToArray(), peer[WgGenl.PeerPublicKey]);
            Assert.Equal(i == 0, peer.ContainsKey(WgGenl.PeerFlags));   // REPLACE_ALLOWEDIPS would drop the IPs already sent
            foreach (var a in AttrList(peer[WgGenl.PeerAllowedIps]))
                got.Add(new IpPrefix(new IPAddress(Attrs(a)[WgGenl.AipAddr]), Attrs(a)[WgGenl.AipCidr][0]));
        }
        Assert.Equal(ips, got);
    }

    [Fact]
    public void DumpPartsAreCoalescedIntoOneDevice()
    {
        using var priv = WgPrivateKey.Generate();
        var part1 = DumpMessage(w =>
        {
            w.PutU32(WgGenl.DevIfIndex, 9);
            w.PutString(WgGenl.DevIfName, "wg0");
            w.Put(WgGenl.DevPublicKey, priv.PublicKey.ToArray());
            w.PutU16(WgGenl.DevListenPort, 51820);
            w.PutU32(WgGenl.DevFwmark, 3);
            int peers = w.BeginNest(WgGenl.DevPeers);
            PutPeer(w, Key(1), 0, 10, endpoint: IPEndPoint.Parse("[2001:db8::1]:9"), handshake: (1_700_000_000, 500));
            PutPeer(w, Key(2), 0, 5);
            w.EndNest(peers);
        });
        var part2 = DumpMessage(w =>
        {
            int peers = w.BeginNest(WgGenl.DevPeers);
            PutPeer(w, Key(2), 5, 10);   // the same peer continued: only its remaining allowed IPs
            PutPeer(w, Key(3), 0, 1);
            w.EndNest(peers);
        });
        using var d = new KernelDevice();
        var byKey = new Dictionary<WgKey, DevicePeer>();
        WgGenl.ParseDeviceMessage(part1, d, byKey);
        WgGenl.ParseDeviceMessage(part2, d, byKey);
        Assert.Equal(9, d.IfIndex);
        Assert.Equal("wg0", d.IfName);
        Assert.Equal(priv.PublicKey, d.PublicKey);
        Assert.Equal(51820, d.ListenPort);
        Assert.Equal(3u, d.Fwmark);
        Assert.Equal([Key(1), Key(2), Key(3)], d.Peers.Select(p => p.PublicKey));
        Assert.Equal(10, d.Peers[1].AllowedIPs.Count);
        Assert.Equal(IpPrefix.Parse("10.3.0.9/32"), d.Peers[1].AllowedIPs[9]);
        Assert.Equal("[2001:db8::1]:9", d.Peers[0].Endpoint?.ToString());
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000).AddTicks(5), d.Peers[0].LastHandshake);
        Assert.Null(d.Peers[1].LastHandshake);
        Assert.Equal(1234, d.Peers[0].RxBytes);
    }

    [Theory]
    [InlineData(3)]      // shorter than a header
    [InlineData(20)]     // header says more than was received
    public void TruncatedAnswersAreRefused(int cut)
    {
        var m = WgGenl.GetDeviceRequest(Family, "wg0", 1);
        Assert.Throws<FormatException>(() => NetlinkMessage.Split(m.AsMemory(0, cut)));
    }

    [Fact]
    public void MalformedAttributesAreRefusedNotCrashing()
    {
        var badLen = DumpMessage(w => w.PutU16(WgGenl.DevIfIndex, 9));         // u32 attribute of 2 bytes
        var shortKey = DumpMessage(w => { int p = w.BeginNest(WgGenl.DevPeers); int one = w.BeginNest(0); w.Put(WgGenl.PeerPublicKey, new byte[31]); w.EndNest(one); w.EndNest(p); });
        var noKey = DumpMessage(w => { int p = w.BeginNest(WgGenl.DevPeers); int one = w.BeginNest(0); w.PutU16(WgGenl.PeerKeepalive, 1); w.EndNest(one); w.EndNest(p); });
        var badCidr = DumpMessage(w =>
        {
            int p = w.BeginNest(WgGenl.DevPeers); int one = w.BeginNest(0); w.Put(WgGenl.PeerPublicKey, Key(1).ToArray());
            int ips = w.BeginNest(WgGenl.PeerAllowedIps); int ip = w.BeginNest(0);
            w.PutU16(WgGenl.AipFamily, WgGenl.AfInet); w.Put(WgGenl.AipAddr, new byte[] { 10, 0, 0, 1 }); w.PutU8(WgGenl.AipCidr, 33);
            w.EndNest(ip); w.EndNest(ips); w.EndNest(one); w.EndNest(p);
        });
        var badEndpoint = DumpMessage(w => { int p = w.BeginNest(WgGenl.DevPeers); int one = w.BeginNest(0); w.Put(WgGenl.PeerPublicKey, Key(1).ToArray()); w.Put(WgGenl.PeerEndpoint, new byte[] { 10, 0, 1 }); w.EndNest(one); w.EndNest(p); });
        foreach (var m in new[] { badLen, shortKey, noKey, badCidr, badEndpoint })
        {
            using var d = new KernelDevice();
            Assert.Throws<FormatException>(() => WgGenl.ParseDeviceMessage(m, d, []));
        }
        // An attribute whose length runs past the payload.
        var bytes = WgGenl.GetDeviceRequest(Family, "wg0", 1);
        bytes[20] = 200;
        var cut = NetlinkMessage.Split(bytes)[0];
        using var dev = new KernelDevice();
        Assert.Throws<FormatException>(() => WgGenl.ParseDeviceMessage(cut, dev, []));
    }

    [Fact]
    public void ErrorAnswersCarryTheErrnoAndMapToStableIds()
    {
        var err = new byte[36];
        BinaryPrimitives.WriteUInt32LittleEndian(err, 36);
        BinaryPrimitives.WriteUInt16LittleEndian(err.AsSpan(4), Netlink.TypeError);
        BinaryPrimitives.WriteInt32LittleEndian(err.AsSpan(16), -19);
        Assert.Equal(-19, NetlinkMessage.Split(err)[0].ErrorCode());
        Assert.Equal("KernelNotPermitted", KernelErrno.ToException(-1, "x", "wg0").ErrorId);
        Assert.Equal("KernelDeviceNotFound", KernelErrno.ToException(-19, "x", "wg0").ErrorId);
        Assert.Equal("ListenPortInUse", KernelErrno.ToException(-98, "x", "wg0").ErrorId);
        Assert.Equal("KernelModuleMissing", KernelErrno.ToException(-95, "x", "wg0").ErrorId);
        Assert.Equal("KernelSetFailed", KernelErrno.ToException(-22, "x", "wg0").ErrorId);
    }

    [Fact]
    public void PrivateKeyBytesAreErasedFromTheWriterAfterClear()
    {
        using var priv = WgPrivateKey.Generate();
        var w = Assert.Single(WgGenl.SetDeviceMessages(Family, "wg0", new KernelDeviceChange { PrivateKey = priv }));
        var bytes = w.Finish(1);
        var dev = Attrs(NetlinkMessage.Split(bytes)[0].Payload.Span[4..]);
        Assert.Equal(priv.Span.ToArray(), dev[WgGenl.DevPrivateKey]);
        w.Clear();
        Assert.DoesNotContain(priv.ExportHex(), Convert.ToHexStringLower(w.Finish(1)));
    }

    [NoWireguardModuleFact]
    public void OnAKernelWithoutTheModuleTheBackendSaysWhatIsMissing()
    {
        var e = Assert.Throws<WgException>(() => new KernelBackend($"wgkx{Environment.ProcessId % 10000}", null, 0));
        Assert.Equal("KernelModuleMissing", e.ErrorId);
        Assert.Contains("modprobe wireguard", e.Message, StringComparison.Ordinal);
    }

    private static WgKey Key(int i) { var b = new byte[32]; b[0] = 0xA0; BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(1), i); return new WgKey(b); }

    private static NetlinkMessage DumpMessage(Action<NetlinkWriter> body)
    {
        var w = WgGenl.NewGenl(Family, WgGenl.CmdGetDevice, Netlink.FMulti);
        body(w);
        return NetlinkMessage.Split(w.Finish(1))[0];
    }

    private static void PutPeer(NetlinkWriter w, WgKey key, int fromIp, int toIp, IPEndPoint? endpoint = null, (long, long)? handshake = null)
    {
        int one = w.BeginNest(0);
        w.Put(WgGenl.PeerPublicKey, key.ToArray());
        if (endpoint is not null) w.Put(WgGenl.PeerEndpoint, WgGenl.EncodeSockaddr(endpoint));
        if (handshake is { } hs)
        {
            var (s, ns) = hs;
            var ts = new byte[16];
            BinaryPrimitives.WriteInt64LittleEndian(ts, s);
            BinaryPrimitives.WriteInt64LittleEndian(ts.AsSpan(8), ns);
            w.Put(WgGenl.PeerLastHandshake, ts);
            var rx = new byte[8]; BinaryPrimitives.WriteInt64LittleEndian(rx, 1234); w.Put(WgGenl.PeerRxBytes, rx);
        }
        int ips = w.BeginNest(WgGenl.PeerAllowedIps);
        for (int i = fromIp; i < toIp; i++)
        {
            int ip = w.BeginNest(0);
            w.PutU16(WgGenl.AipFamily, WgGenl.AfInet);
            w.Put(WgGenl.AipAddr, new byte[] { 10, 3, 0, (byte)i });
            w.PutU8(WgGenl.AipCidr, 32);
            w.EndNest(ip);
        }
        w.EndNest(ips);
        w.EndNest(one);
    }

    private static Dictionary<ushort, byte[]> Attrs(ReadOnlySpan<byte> payload)
    {
        var d = new Dictionary<ushort, byte[]>();
        var r = new NetlinkAttrReader(payload);
        while (r.Next()) d[r.Type] = r.Value.ToArray();
        return d;
    }

    private static List<byte[]> AttrList(ReadOnlySpan<byte> payload)
    {
        var l = new List<byte[]>();
        var r = new NetlinkAttrReader(payload);
        while (r.Next()) l.Add(r.Value.ToArray());
        return l;
    }

    private static int FindAttr(ReadOnlySpan<byte> payload, ushort type)
    {
        int off = 0;
        while (off < payload.Length)
        {
            int len = BinaryPrimitives.ReadUInt16LittleEndian(payload[off..]);
            if ((BinaryPrimitives.ReadUInt16LittleEndian(payload[(off + 2)..]) & Netlink.NlaTypeMask) == type) return off;
            off += Netlink.Align(len);
        }
        return -1;
    }
}

/// <summary>Runs on Linux without the wireguard module (this host); skipped visibly elsewhere.</summary>
public sealed class NoWireguardModuleFactAttribute : FactAttribute
{
    public NoWireguardModuleFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || Directory.Exists("/sys/module/wireguard") || Environment.UserName != "root")
            Skip = "needs root on Linux without the wireguard module (the guest tests cover the module)";
    }
}
