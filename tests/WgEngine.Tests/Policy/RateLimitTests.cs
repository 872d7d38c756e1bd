using Microsoft.Extensions.Time.Testing;
using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Policy;
using WgEngine.Tests.TestSupport;
using static WgEngine.Tests.Policy.TrafficPolicyTests;

namespace WgEngine.Tests.Policy;

public class RateLimitTests
{
    [Fact]
    public void A_bucket_passes_its_burst_then_exactly_the_rate_over_time()
    {
        var clock = new FakeTimeProvider();
        var bucket = new TokenBucket(new RateLimit(8_000_000, 100_000), clock);   // 1 MB/s, 100 kB burst
        int passed = 0;
        while (bucket.TryTake(1000)) passed++;
        Assert.Equal(100, passed);                                                  // the burst
        long bytes = 0;
        for (int ms = 0; ms < 2000; ms++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(1));
            while (bucket.TryTake(1000)) bytes += 1000;
        }
        Assert.InRange(bytes, 1_999_000, 2_000_000);                                // two seconds at 1 MB/s, nothing lost to rounding
        clock.Advance(TimeSpan.FromHours(1));                                       // a long pause fills it to the burst only
        passed = 0;
        while (bucket.TryTake(1000)) passed++;
        Assert.Equal(100, passed);
    }

    [Fact]
    public void The_default_burst_is_half_a_second_at_least_64_KiB_and_bad_rates_are_refused()
    {
        Assert.Equal(1_250_000, new RateLimit(20_000_000).EffectiveBurstBytes);
        Assert.Equal(65_536, new RateLimit(1_000_000).EffectiveBurstBytes);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(new RateLimit(10), TimeProvider.System));
    }

    [Fact]
    public void Taking_allocates_nothing()
    {
        var bucket = new TokenBucket(new RateLimit(1_000_000_000), TimeProvider.System);
        bucket.TryTake(100);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100_000; i++) bucket.TryTake(1400);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_limited_peer_is_cut_at_its_burst_in_both_directions()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var net = new TestNet(clock);
        var gwEgress = new CaptureEgress();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"], gwEgress);
        var aReceived = new CaptureEgress();
        var (a, aKey, _) = net.Create(egress: aReceived);
        gw.AddPeer(TestNet.Peer(aKey.PublicKey, ["10.8.0.2/32"]) with { UploadLimit = new RateLimit(8000 * 10, 10_000), DownloadLimit = new RateLimit(8000 * 10, 4_000) });
        a.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        var packet = Tcp("10.8.0.2", "198.51.100.1", 1, 80);   // 40 bytes
        int delivered = 0;
        for (int i = 0; i < 400; i++)
        {
            Assert.True(a.SendPacket(packet));
            if (gwEgress.Packets.TryTake(out _, TimeSpan.FromSeconds(i == 0 ? 5 : 0.5))) delivered++;
            else break;
        }
        // 10,000 bytes of burst at 40 bytes a packet, the clock standing still: 250 pass, then drops.
        Assert.Equal(10_000 / 40, delivered);
        Assert.Equal(1, gw.Counters.RateLimitedData);

        var back = Tcp("198.51.100.1", "10.8.0.2", 80, 1);
        delivered = 0;
        for (int i = 0; i < 400; i++)
        {
            Assert.True(gw.SendPacket(back));
            if (aReceived.Packets.TryTake(out _, TimeSpan.FromSeconds(0.5))) delivered++;
            else break;
        }
        Assert.Equal(4_000 / 40, delivered);
        Assert.Equal(2, gw.Counters.RateLimitedData);
        Assert.Equal(new RateLimit(80_000, 10_000), gw.GetPeer(aKey.PublicKey)!.UploadLimit);
    }

    [Fact]
    public void Limits_round_trip_through_the_config_file()
    {
        var text = "[Interface]\nListenPort = 1\n\n[Peer]\n#! UploadLimit = 20000000\n#! DownloadLimit = 5000000 131072\nPublicKey = "
            + global::WgEngine.Crypto.WgPrivateKey.Generate().PublicKey.ToBase64() + "\n";
        var peer = Assert.Single(WgConfigParser.Parse(text, "t").Peers);
        Assert.Equal(new RateLimit(20_000_000), peer.UploadLimit);
        Assert.Equal(new RateLimit(5_000_000, 131_072), peer.DownloadLimit);
        var back = Assert.Single(WgConfigParser.Parse(WgConfigWriter.Write(new WgConfig { Peers = { peer } }), "t").Peers);
        Assert.Equal(peer.UploadLimit, back.UploadLimit);
        Assert.Equal(peer.DownloadLimit, back.DownloadLimit);
        var e = Assert.Throws<global::WgEngine.Contracts.WgException>(() => WgConfigParser.Parse(text.Replace("20000000", "fast"), "t"));
        Assert.Contains("UploadLimit 'fast'", e.Message);
    }
}
