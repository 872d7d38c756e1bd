using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Kernel;
using WgEngine.Net;

namespace WgEngine.KernelGuest;

/// <summary>
/// The kernel backend against the real wireguard module, inside the guest (no network device: only
/// loopback and the veth pair / namespace the wireguard-go test makes). Names carry a per-run suffix.
/// </summary>
internal static class KernelTests
{
    public static List<string> Figures { get; } = [];
    private static readonly string Run = (Environment.ProcessId % 10000).ToString("D4", System.Globalization.CultureInfo.InvariantCulture);
    private static string Link(string tag) => $"wgk{tag}{Run}";
    private static IpPrefix P(string s) => IpPrefix.Parse(s);

    [GuestTest]
    public static void CreateSetsKeyPortMtuAddressesAndStopDeletesTheLink()
    {
        string name = Link("c");
        using var key = WgPrivateKey.Generate();
        var backend = new KernelBackend(name, key, 0, [P("10.50.0.1/24"), P("fd50::1/64")], 1380);
        try
        {
            Check.True(backend.CreatedLink, "the backend created the link");
            Check.True(RtLink.IndexOf(name) > 0, "the link exists");
            Check.Equal(key.PublicKey, backend.PublicKey, "public key from the kernel");
            Check.True(backend.ListenPort is > 0 and < 65536, $"a port was picked ({backend.ListenPort})");
            var nic = NetworkInterface.GetAllNetworkInterfaces().Single(n => n.Name == name);
            Check.Equal("1380", File.ReadAllText($"/sys/class/net/{name}/mtu").Trim(), "MTU");
            Check.True((File.ReadAllText($"/sys/class/net/{name}/flags").Trim() is var f) && (Convert.ToInt32(f, 16) & 1) == 1, "link is up");
            var addrs = nic.GetIPProperties().UnicastAddresses.Select(a => a.Address.ToString()).ToList();
            Check.True(addrs.Contains("10.50.0.1") && addrs.Contains("fd50::1"), $"addresses: {string.Join(",", addrs)}");
            backend.SetFwmark(0x51);
            backend.SetListenPort(0);
            using var d = QueryRaw(name);
            Check.Equal(0x51u, d.Fwmark, "fwmark read back from the kernel");
            Check.Equal(backend.ListenPort, d.ListenPort, "listen port read back");
            using var other = WgPrivateKey.Generate();
            backend.SetPrivateKey(other);
            Check.Equal(other.PublicKey, backend.PublicKey, "new public key");
        }
        finally { backend.Stop(); }
        Check.Equal(0, RtLink.IndexOf(name), "link deleted on Stop");
        // An existing link is adopted with its peers and left in place.
        var first = new KernelBackend(name, null, null);
        var peer = WgPrivateKey.Generate().PublicKey;
        try
        {
            first.AddPeer(new PeerConfig { PublicKey = peer, AllowedIPs = [P("10.50.1.2/32")] });
            var second = new KernelBackend(name, null, null);
            Check.True(!second.CreatedLink, "second backend adopts the link");
            Check.Equal(peer, second.ExportPeers().Single().PublicKey, "existing peer exported");
            second.Stop();
            Check.True(RtLink.IndexOf(name) > 0, "adopted link survives Stop");
        }
        finally { first.Stop(); }
    }

    [GuestTest]
    public static void TenThousandPeersAddUpdateRemoveInBatches()
    {
        const int n = 10_000;
        using var key = WgPrivateKey.Generate();
        var backend = new KernelBackend(Link("s"), key, 0);
        try
        {
            var keys = Enumerable.Range(0, n).Select(_ => WgPrivateKey.Generate().PublicKey).ToArray();
            PeerConfig Cfg(int i, int net) => new()
            {
                PublicKey = keys[i], AllowedIPs = [new IpPrefix(new IPAddress([10, (byte)net, (byte)(i >> 8), (byte)i]), 32)],
                Endpoint = new IPEndPoint(IPAddress.Loopback, 20000 + i % 1000), PersistentKeepalive = i % 3 == 0 ? 25 : 0,
            };
            long memBefore = MemAvailableKiB();
            var sw = Stopwatch.StartNew();
            for (int b = 0; b < n; b += 1000) backend.SetPeers([.. Enumerable.Range(b, 1000).Select(i => Cfg(i, 100))]);
            double addSeconds = sw.Elapsed.TotalSeconds;
            long memAfter = MemAvailableKiB();
            sw.Restart();
            var read = backend.GetPeers();
            double readSeconds = sw.Elapsed.TotalSeconds;
            Check.Equal(n, read.Count, "peers read back");
            var byKey = read.ToDictionary(p => p.PublicKey);
            for (int i = 0; i < n; i++)
            {
                var p = byKey[keys[i]];
                if (p.AllowedIPs.Count != 1 || p.AllowedIPs[0] != Cfg(i, 100).AllowedIPs[0] || p.Endpoint?.Port != 20000 + i % 1000 || p.PersistentKeepalive != (i % 3 == 0 ? 25 : 0))
                    throw new CheckFailedException($"peer {i} read back as {string.Join(",", p.AllowedIPs)} {p.Endpoint} {p.PersistentKeepalive}");
            }
            sw.Restart();
            for (int b = 0; b < n; b += 1000) backend.SetPeers([.. Enumerable.Range(b, 1000).Where(i => i % 2 == 0).Select(i => Cfg(i, 101))]);
            double updateSeconds = sw.Elapsed.TotalSeconds;
            var updated = backend.GetPeers().ToDictionary(p => p.PublicKey);
            Check.Equal(n, updated.Count, "update kept the count");
            for (int i = 0; i < n; i++)
                Check.Equal(i % 2 == 0 ? (byte)101 : (byte)100, updated[keys[i]].AllowedIPs.Single().Address.GetAddressBytes()[1], $"peer {i} allowed IP after update");
            sw.Restart();
            int removed = 0;
            for (int b = 0; b < n; b += 1000) removed += backend.RemovePeers(keys[b..(b + 1000)]);
            double removeSeconds = sw.Elapsed.TotalSeconds;
            Check.Equal(n, removed, "removed count");
            Check.Equal(0, backend.GetPeers().Count, "no peers left");
            Figures.Add($"FIGURE kernel (emulated, TCG guest): {n} peers set in {addSeconds:F1} s ({n / addSeconds:F0}/s), read in {readSeconds:F1} s, "
                + $"5000 updated in {updateSeconds:F1} s, removed in {removeSeconds:F1} s; kernel memory ~{(memBefore - memAfter) / 1024.0:F1} MiB (MemAvailable drop)");
        }
        finally { backend.Stop(); }
    }

    [GuestTest]
    public static void AllowedIpsSplitOverMessagesAndEndpointsReadBack()
    {
        using var key = WgPrivateKey.Generate();
        var backend = new KernelBackend(Link("a"), key, 0);
        try
        {
            var many = Enumerable.Range(0, 1500).Select(i => new IpPrefix(new IPAddress([10, 70, (byte)(i >> 8), (byte)i]), 32)).Append(P("fd70::/64")).ToList();
            var peer = WgPrivateKey.Generate().PublicKey;
            var psk = WgPrivateKey.Generate().PublicKey;
            backend.AddPeer(new PeerConfig { PublicKey = peer, AllowedIPs = many, PresharedKey = psk, Endpoint = IPEndPoint.Parse("[fd00::7]:51999"), PersistentKeepalive = 15 });
            var s = backend.GetPeer(peer) ?? throw new CheckFailedException("peer missing");
            Check.Equal(many.Count, s.AllowedIPs.Count, "1501 allowed IPs (set in several messages, dumped in several)");
            Check.True(many.ToHashSet().SetEquals(s.AllowedIPs), "the same allowed IPs");
            Check.Equal("[fd00::7]:51999", s.Endpoint?.ToString(), "IPv6 endpoint");
            Check.True(s.HasPresharedKey, "preshared key set");
            Check.Equal(15, s.PersistentKeepalive, "keepalive");
            backend.UpdatePeer(new PeerConfig { PublicKey = peer, AllowedIPs = [P("10.71.0.0/16")], Endpoint = IPEndPoint.Parse("127.0.0.9:4000") });
            s = backend.GetPeer(peer)!;
            Check.Equal("10.71.0.0/16", string.Join(",", s.AllowedIPs), "allowed IPs replaced, not added");
            Check.Equal("127.0.0.9:4000", s.Endpoint?.ToString(), "IPv4 endpoint");
            Check.True(!s.HasPresharedKey, "preshared key removed by the update");
            var e = Check.Throws<WgException>(() => backend.AddPeer(new PeerConfig { PublicKey = peer }), "duplicate add");
            Check.Equal("PeerAlreadyExists", e.ErrorId, "duplicate add error");
            var unknown = WgPrivateKey.Generate().PublicKey;
            Check.Equal("PeerNotFound", Check.Throws<WgException>(() => backend.UpdatePeer(new PeerConfig { PublicKey = unknown }), "update of unknown").ErrorId, "update error");
            Check.True(!backend.RemovePeer(unknown), "remove of unknown is false");
            Check.True(backend.RemovePeer(peer) && backend.GetPeer(peer) is null, "removed");
        }
        finally { backend.Stop(); }
    }

    [GuestTest]
    public static void MalformedInputIsRefusedWithNothingChanged()
    {
        Check.Equal("InvalidInterfaceName", Check.Throws<WgException>(() => { using var b = new KernelBackend("wgk-name-far-too-long", null, 0); }, "long name").ErrorId, "name error");
        string name = Link("m");
        using var key = WgPrivateKey.Generate();
        var backend = new KernelBackend(name, key, 0);
        try
        {
            var peer = WgPrivateKey.Generate().PublicKey;
            backend.AddPeer(new PeerConfig { PublicKey = peer, AllowedIPs = [P("10.72.0.2/32")] });
            using var before = QueryRaw(name);
            // A raw SET whose peer key is 31 bytes: the kernel refuses it and keeps the device as it was.
            // (Not with WGDEVICE_F_REPLACE_PEERS: the kernel drops the peers before it parses the new ones,
            // so the backend validates its input itself and never sends REPLACE_PEERS.)
            using var s = new NetlinkSocket(NetlinkSocket.Generic);
            ushort family = FamilyId(s);
            int errno = s.Ask(seq =>
            {
                var w = WgGenl.NewGenl(family, WgGenl.CmdSetDevice, Netlink.FRequest | Netlink.FAck);
                w.PutString(WgGenl.DevIfName, name);
                int peers = w.BeginNest(WgGenl.DevPeers);
                int one = w.BeginNest(0);
                w.Put(WgGenl.PeerPublicKey, new byte[31]);
                w.EndNest(one);
                w.EndNest(peers);
                return w.Finish(seq);
            });
            // The policy of WGPEER_A_PUBLIC_KEY is an exact length: the kernel answers ERANGE (NLA_POLICY_EXACT_LEN).
            Check.Equal(-KernelErrno.ERANGE, errno, "kernel answer to a 31-byte key");
            Check.Equal("KernelSetFailed", KernelErrno.ToException(errno, "x", name).ErrorId, "mapped error id");
            using var after = QueryRaw(name);
            Check.Equal(before.Peers.Single().PublicKey, after.Peers.Single().PublicKey, "peers unchanged");
            Check.Equal(before.ListenPort, after.ListenPort, "port unchanged");
            // The backend's own checks come before any message: one bad peer in a batch, nothing sent.
            var good = new PeerConfig { PublicKey = WgPrivateKey.Generate().PublicKey, AllowedIPs = [P("10.72.0.3/32")] };
            var bad = new PeerConfig { PublicKey = WgPrivateKey.Generate().PublicKey, PersistentKeepalive = 70000 };
            Check.Equal("InvalidPersistentKeepalive", Check.Throws<WgException>(() => backend.SetPeers([good, bad]), "keepalive 70000").ErrorId, "batch refused");
            using (var unchanged = QueryRaw(name)) Check.Equal(1, unchanged.Peers.Count, "nothing of the refused batch reached the kernel");
            // A port already taken: ListenPortInUse, the old port kept.
            using var taken = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetworkV6, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp) { DualMode = true };
            taken.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
            int busy = ((IPEndPoint)taken.LocalEndPoint!).Port;
            int old = backend.ListenPort;
            Check.Equal("ListenPortInUse", Check.Throws<WgException>(() => backend.SetListenPort(busy), "busy port").ErrorId, "busy port error");
            Check.Equal(old, backend.ListenPort, "old port kept");
            Check.Equal("KernelDeviceNotFound", KernelErrno.ToException(-KernelErrno.ENODEV, "x", name).ErrorId, "ENODEV mapping");
        }
        finally { backend.Stop(); }
    }

    [GuestTest]
    public static void FacadePolicyWorksOverTheKernelBackend()
    {
        string name = Link("f");
        using var server = VPNServer.Start(new ServerOptions { Name = name, Backend = BackendKind.Kernel, Egress = EgressMode.None, Addresses = [P("10.73.0.1/24")], ListenPort = 0 });
        Check.Equal("Kernel", server.BackendKind, "backend kind");
        Check.True(RtLink.IndexOf(name) > 0, "the facade created the link");
        var a = WgPrivateKey.Generate().PublicKey;
        var added = server.AddPeer(new PeerSpec { PublicKey = a, Name = "alice" });
        Check.Equal("10.73.0.2/32", string.Join(",", added.AllowedIPs), "address from the pool");
        using (var d = QueryRaw(name)) Check.Equal("10.73.0.2/32", string.Join(",", d.Peers.Single().AllowedIPs), "in the kernel");
        var b = WgPrivateKey.Generate().PublicKey;
        Check.Equal("AllowedIPsOverlap", Check.Throws<WgException>(() => server.AddPeer(new PeerSpec { PublicKey = b, AllowedIPs = [P("10.73.0.2/32")] }), "overlap").ErrorId, "overlap refused");
        Check.Equal("PolicyNotApplicable", Check.Throws<WgException>(() => server.AddPeer(new PeerSpec { PublicKey = b, Tags = ["x"] }), "tags").ErrorId, "policy refused");
        using (var d = QueryRaw(name)) Check.Equal(1, d.Peers.Count, "refusals changed nothing in the kernel");
        Check.True(server.DisablePeer(a), "disable");
        using (var d = QueryRaw(name)) Check.Equal(0, d.Peers.Count, "disabled peer removed from the kernel");
        Check.True(server.EnablePeer(a), "enable");
        using (var d = QueryRaw(name)) Check.Equal(a, d.Peers.Single().PublicKey, "enabled peer back in the kernel");
        Check.Equal("alice", server.GetPeerInfo(a)?.Name, "name kept by the facade");
        Check.Equal("EgressRulesNotApplicable", Check.Throws<WgException>(() => server.SetEgressRules(Egress.EgressRules.Default), "egress rules").ErrorId, "egress rules refused");
        server.Stop();
        Check.Equal(0, RtLink.IndexOf(name), "link deleted when the server stops");
    }

    [GuestTest]
    public static void HandshakeAndPingWithTheUserspaceEngine()
    {
        string name = Link("u");
        using var kernelKey = WgPrivateKey.Generate();
        using var userKey = WgPrivateKey.Generate();
        var kernel = new KernelBackend(name, kernelKey, 0, [P("10.74.0.1/24")]);
        var user = new UserspaceBackend(new InterfaceConfig
        {
            PrivateKey = userKey, ListenPort = 0, Addresses = [P("10.74.0.2/24")], Egress = EgressMode.None, BindAddress = IPAddress.Loopback,
        });
        try
        {
            user.AddPeer(new PeerConfig { PublicKey = kernel.PublicKey, AllowedIPs = [P("10.74.0.1/32")] });
            kernel.AddPeer(new PeerConfig { PublicKey = user.PublicKey, AllowedIPs = [P("10.74.0.2/32")], Endpoint = new IPEndPoint(IPAddress.Loopback, user.ListenPort) });
            PingUntilAnswered(IPAddress.Parse("10.74.0.2"), "userspace engine");
            var k = kernel.GetPeer(user.PublicKey)!;
            Check.True(k.LatestHandshake is not null && k.ReceivedBytes > 0 && k.SentBytes > 0, $"kernel stats: handshake {k.LatestHandshake}, rx {k.ReceivedBytes}, tx {k.SentBytes}");
            Check.True(user.GetPeer(kernel.PublicKey)?.LatestHandshake is not null, "userspace side saw the handshake");
            Check.True(kernel.GetStats().ReceivedBytes > 0, "interface stats summed from the kernel");
        }
        finally { user.Stop(); user.Dispose(); kernel.Stop(); }
    }

    [GuestTest]
    public static void HandshakeAndPingWithWireguardGoInANamespace()
    {
        string ns = $"wgkns{Run}", vethA = $"wgkva{Run}", vethB = $"wgkvb{Run}", goName = $"wggo{Run}", name = Link("g");
        using var kernelKey = WgPrivateKey.Generate();
        using var goKey = WgPrivateKey.Generate();
        var keyFile = $"/tmp/{goName}.key";
        File.WriteAllText(keyFile, goKey.ExportBase64());
        Process? go = null;
        KernelBackend? kernel = null;
        try
        {
            Sh($"ip netns add {ns}");
            Sh($"ip link add {vethA} type veth peer name {vethB} netns {ns}");
            Sh($"ip addr add 10.75.0.1/30 dev {vethA}"); Sh($"ip link set {vethA} up");
            Sh($"ip -n {ns} addr add 10.75.0.2/30 dev {vethB}"); Sh($"ip -n {ns} link set {vethB} up"); Sh($"ip -n {ns} link set lo up");
            var psi = new ProcessStartInfo("ip", $"netns exec {ns} wireguard-go -f {goName}") { RedirectStandardOutput = true, RedirectStandardError = true };
            go = Process.Start(psi)!;
            Check.Eventually(() => File.Exists($"/run/wireguard/{goName}.sock"), TimeSpan.FromSeconds(60), "wireguard-go's UAPI socket");
            kernel = new KernelBackend(name, kernelKey, 0, [P("10.76.0.1/24")]);
            Sh($"ip netns exec {ns} wg set {goName} private-key {keyFile} listen-port 51900 peer {kernel.PublicKey} allowed-ips 10.76.0.1/32 endpoint 10.75.0.1:{kernel.ListenPort}");
            Sh($"ip -n {ns} addr add 10.76.0.2/24 dev {goName}"); Sh($"ip -n {ns} link set {goName} up");
            var goPub = goKey.PublicKey;
            kernel.AddPeer(new PeerConfig { PublicKey = goPub, AllowedIPs = [P("10.76.0.2/32")], Endpoint = IPEndPoint.Parse("10.75.0.2:51900") });
            PingUntilAnswered(IPAddress.Parse("10.76.0.2"), "wireguard-go");
            var k = kernel.GetPeer(goPub)!;
            Check.True(k.LatestHandshake is not null && k.ReceivedBytes > 0, $"kernel stats: handshake {k.LatestHandshake}, rx {k.ReceivedBytes}");
            // `wg show` reads the kernel link over the same netlink family: it sees what the backend set.
            var shown = Sh($"wg show {name} peers");
            Check.True(shown.Contains(goPub.ToBase64(), StringComparison.Ordinal), $"wg show lists the peer: {shown}");
        }
        finally
        {
            kernel?.Stop();
            if (go is { HasExited: false }) { go.Kill(true); go.WaitForExit(10_000); }
            TrySh($"ip netns del {ns}");
            TrySh($"ip link del {vethA}");
            File.Delete(keyFile);
        }
    }

    private static void PingUntilAnswered(IPAddress target, string what)
    {
        using var ping = new Ping();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var r = ping.Send(target, 2000);
            if (r.Status == IPStatus.Success) { Figures.Add($"FIGURE first ping answered by the {what} after {sw.Elapsed.TotalSeconds:F1} s (handshake included, emulated)"); return; }
            if (sw.Elapsed > TimeSpan.FromSeconds(90)) throw new CheckFailedException($"no ping answer from the {what} at {target} within 90 s (last: {r.Status})");
        }
    }

    private static KernelDevice QueryRaw(string name)
    {
        using var s = new NetlinkSocket(NetlinkSocket.Generic);
        ushort family = FamilyId(s);
        var parts = new List<NetlinkMessage>();
        int errno = s.Ask(seq => WgGenl.GetDeviceRequest(family, name, seq), parts);
        if (errno != 0) throw new CheckFailedException($"GET_DEVICE errno {errno}");
        var d = new KernelDevice();
        var byKey = new Dictionary<WgKey, DevicePeer>();
        foreach (var m in parts) WgGenl.ParseDeviceMessage(m, d, byKey);
        return d;
    }

    private static ushort FamilyId(NetlinkSocket s)
    {
        var answers = new List<NetlinkMessage>();
        Check.Equal(0, s.Ask(seq => WgGenl.GetFamilyRequest(seq), answers), "family lookup");
        return WgGenl.ParseFamilyId(answers[0]);
    }

    private static long MemAvailableKiB() =>
        long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);

    private static string Sh(string command)
    {
        var parts = command.Split(' ', 2);
        var psi = new ProcessStartInfo(parts[0], parts.Length > 1 ? parts[1] : "") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new CheckFailedException($"'{command}' timed out"); }
        if (p.ExitCode != 0) throw new CheckFailedException($"'{command}' failed ({p.ExitCode}): {error.Trim()}");
        return output;
    }

    private static void TrySh(string command)
    {
        try { Sh(command); } catch (CheckFailedException) { /* cleanup of something already gone */ }
    }
}
