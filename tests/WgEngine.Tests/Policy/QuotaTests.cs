using System.Net;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Config;
using WgEngine.Conn;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Policy;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Policy;

[Collection("AtomicFile")]
public sealed class QuotaTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wgquota-").FullName;
    private string PathOf => Path.Combine(_dir, "wg0.conf");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(QuotaPeriod.Day, "2026-03-18T10:00:00Z", "2026-03-18T00:00:00Z")]
    [InlineData(QuotaPeriod.Week, "2026-03-18T10:00:00Z", "2026-03-16T00:00:00Z")]   // a Wednesday: Monday
    [InlineData(QuotaPeriod.Month, "2026-03-18T10:00:00Z", "2026-03-01T00:00:00Z")]
    [InlineData(QuotaPeriod.Total, "2026-03-18T10:00:00Z", "1970-01-01T00:00:00Z")]
    public void Periods_start_on_calendar_boundaries_in_UTC(QuotaPeriod period, string now, string start) =>
        Assert.Equal(DateTimeOffset.Parse(start), new DataQuota(1, period).PeriodStart(DateTimeOffset.Parse(now)));

    [Fact]
    public void The_device_cuts_a_peer_at_its_quota_and_reports_it_once()
    {
        using var net = new TestNet();
        var reported = new List<WgKey>();
        var gwKey = WgPrivateKey.Generate();
        var gwBind = net.Network.CreateBind(41000);
        var gwEgress = new CaptureEgress();
        using var gw = new WgDevice(gwKey, gwBind, new DeviceOptions
        {
            Addresses = [IpPrefix.Parse("10.8.0.1/24")], Egress = gwEgress, Workers = 2,
            QuotaExhausted = k => { lock (reported) reported.Add(k); },
        });
        gw.Start();
        var (a, aKey, _) = net.Create(egress: new CaptureEgress());
        gw.AddPeer(TestNet.Peer(aKey.PublicKey, ["10.8.0.2/32"]) with { Quota = new DataQuota(2000), QuotaUsedBytes = 400 });
        a.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        var packet = TrafficPolicyTests.Tcp("10.8.0.2", "198.51.100.1", 1, 80);   // 40 bytes
        int delivered = 0;
        for (int i = 0; i < 100; i++)
        {
            Assert.True(a.SendPacket(packet));
            if (gwEgress.Packets.TryTake(out _, TimeSpan.FromSeconds(i == 0 ? 5 : 0.5))) delivered++;
            else break;
        }
        Assert.Equal((2000 - 400) / 40, delivered);
        TestNet.WaitFor(() => { lock (reported) return reported.Count == 1; }, "the exhaustion to be reported");
        for (int i = 0; i < 3; i++) a.SendPacket(packet);
        TestNet.WaitFor(() => gw.Counters.QuotaExceeded >= 4, "the later packets to be refused too");
        lock (reported) Assert.Equal([aKey.PublicKey], reported);   // once only
        Assert.Equal(1600 + 400, gw.GetPeer(aKey.PublicKey)!.QuotaUsedBytes);
    }

    [Fact]
    public void A_used_up_quota_disables_the_peer_with_a_reason_that_survives_a_restart_until_Enable_clears_it()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 18, 10, 0, 0, TimeSpan.Zero));
        VPNServer Start() => VPNServer.Start(new ServerOptions
        {
            ListenPort = 0, BindAddress = IPAddress.Loopback, ConfigPath = PathOf, Egress = EgressMode.None, TimeProvider = clock,
        });
        var clientKey = WgPrivateKey.Generate();
        using var client = new WgDevice(clientKey, new UdpBind(0, IPAddress.Loopback), new DeviceOptions { Egress = new CaptureEgress() });
        client.Start();
        using (var s = Start())
        {
            s.AddPeer(new PeerSpec { PublicKey = clientKey.PublicKey, AllowedIPs = [IpPrefix.Parse("10.8.0.2/32")] });
            s.UpdatePeer(clientKey.PublicKey, new PeerUpdate { Quota = new DataQuota(20_000, QuotaPeriod.Month) });
            client.AddPeer(TestNet.Peer(s.PublicKey, ["10.8.0.0/24"], new IPEndPoint(IPAddress.Loopback, s.ListenPort)));
            // Pings of the gateway, 1 kB each way: the quota is used up mid-stream.
            var ping = Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 9, 1, 1000);
            TestNet.WaitFor(() => { client.SendPacket(ping); Thread.Sleep(5); return s.GetPeerInfo(clientKey.PublicKey)!.Enabled == false; },
                "the quota to disable the peer", 20_000);
            var p = s.GetPeerInfo(clientKey.PublicKey)!;
            Assert.Equal(DisabledReasons.QuotaExceeded, p.DisabledReason);
            Assert.Equal(20_000, p.QuotaUsedBytes);
            var onDisk = Assert.Single(WgConfigParser.ParseFile(PathOf).Peers);
            Assert.True(onDisk.Disabled);
            Assert.Equal(DisabledReasons.QuotaExceeded, onDisk.DisabledReason);
            Assert.Equal(new DataQuota(20_000, QuotaPeriod.Month), onDisk.Quota);
        }
        using (var s = Start())
        {
            var p = s.GetPeerInfo(clientKey.PublicKey)!;
            Assert.False(p.Enabled);
            Assert.Equal(DisabledReasons.QuotaExceeded, p.DisabledReason);
            Assert.True(s.EnablePeer(clientKey.PublicKey));
            p = s.GetPeerInfo(clientKey.PublicKey)!;
            Assert.True(p.Enabled);
            Assert.Null(p.DisabledReason);
            Assert.Equal(0, p.QuotaUsedBytes);                 // enabled on purpose: the quota starts afresh
            Assert.Null(Assert.Single(WgConfigParser.ParseFile(PathOf).Peers).DisabledReason);
            Assert.True(s.DisablePeer(clientKey.PublicKey));
            Assert.Equal(DisabledReasons.Manual, s.GetPeerInfo(clientKey.PublicKey)!.DisabledReason);
        }
    }

    [Fact]
    public void A_new_period_resets_the_usage_and_enables_a_peer_its_quota_disabled()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 31, 23, 58, 0, TimeSpan.Zero));
        var key = WgPrivateKey.Generate().PublicKey;
        File.WriteAllText(PathOf, $"[Interface]\nPrivateKey = {WgPrivateKey.Generate().ExportBase64()}\nListenPort = 0\nAddress = 10.8.0.1/24\n\n"
            + $"#~ [Peer]\n#~ #! Quota = 1000 Month\n#~ #! QuotaUsed = 1000\n#~ #! QuotaPeriodStart = 2026-03-01T00:00:00Z\n#~ #! DisabledReason = QuotaExceeded\n#~ PublicKey = {key.ToBase64()}\n#~ AllowedIPs = 10.8.0.2/32\n");
        using var s = VPNServer.Start(new ServerOptions { BindAddress = IPAddress.Loopback, ListenPort = 0, OverrideListenPort = true, ConfigPath = PathOf, Egress = EgressMode.None, TimeProvider = clock });
        Assert.False(s.GetPeerInfo(key)!.Enabled);
        clock.Advance(TimeSpan.FromMinutes(1));   // still March
        Assert.False(s.GetPeerInfo(key)!.Enabled);
        clock.Advance(TimeSpan.FromMinutes(2));   // April: the sweep a minute later starts the new period
        var p = s.GetPeerInfo(key)!;
        Assert.True(p.Enabled);
        Assert.Equal(0, p.QuotaUsedBytes);
        Assert.Equal(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero), Assert.Single(WgConfigParser.ParseFile(PathOf).Peers).QuotaPeriodStart);
    }
}
