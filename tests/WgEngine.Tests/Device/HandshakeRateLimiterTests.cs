using System.Net;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Device;

namespace WgEngine.Tests.Device;

/// <summary>The per-source token bucket: wireguard-go ratelimiter.go semantics (20/s, burst 5, /64, 1 s GC).</summary>
public class HandshakeRateLimiterTests
{
    private static FakeTimeProvider NewClock() => new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private static SocketAddress Src(string ip, int port = 1000) => new IPEndPoint(IPAddress.Parse(ip), port).Serialize();

    [Fact]
    public void NewSourceGetsABurstOfFiveThenTwentyPerSecond()
    {
        var clock = NewClock();
        var rl = new HandshakeRateLimiter(clock);
        var a = Src("192.0.2.1");
        // 1 ms apart (a flood): the full bucket of 5 is spent, the 6th is refused.
        int allowed = 0;
        for (int i = 0; i < 10; i++) { if (rl.Allow(a)) allowed++; clock.Advance(TimeSpan.FromMilliseconds(1)); }
        Assert.Equal(5, allowed);
        // One packet's worth of tokens (50 ms) later, exactly one more.
        clock.Advance(TimeSpan.FromMilliseconds(50));
        Assert.True(rl.Allow(a));
        Assert.False(rl.Allow(a));
        // Sustained: over 2 s at 1 kHz about 20/s get through (40), never more than the rate plus the burst.
        allowed = 0;
        for (int i = 0; i < 2000; i++) { clock.Advance(TimeSpan.FromMilliseconds(1)); if (rl.Allow(a)) allowed++; }
        Assert.InRange(allowed, 39, 41);
    }

    [Fact]
    public void SourcePortsShareABucketAndOtherAddressesDoNot()
    {
        var rl = new HandshakeRateLimiter(NewClock());
        int fromOneHost = 0;
        for (int port = 1; port <= 100; port++) if (rl.Allow(Src("192.0.2.1", port))) fromOneHost++;
        Assert.InRange(fromOneHost, 4, 5); // a frozen clock earns nothing: the strict ">" of wireguard-go gives 4
        Assert.True(rl.Allow(Src("192.0.2.2")));
        Assert.True(rl.Allow(Src("::ffff:192.0.2.3")));
        Assert.False(rl.Allow(Src("::ffff:192.0.2.1"))); // IPv4-mapped is the same host
    }

    [Fact]
    public void IPv6SourcesAreLimitedPerSlash64()
    {
        var rl = new HandshakeRateLimiter(NewClock());
        int sameNet = 0;
        for (int i = 1; i <= 50; i++) if (rl.Allow(Src($"2001:db8:1:2::{i:x}"))) sameNet++;
        Assert.InRange(sameNet, 4, 5);
        Assert.True(rl.Allow(Src("2001:db8:1:3::1")));
        Assert.Equal(2, rl.Count);
    }

    [Fact]
    public void IdleEntriesAreCollectedAfterASecondAndAFreshBucketFollows()
    {
        var clock = NewClock();
        var rl = new HandshakeRateLimiter(clock);
        for (int i = 1; i <= 20; i++) rl.Allow(Src($"198.51.100.{i}"));
        Assert.Equal(20, rl.Count);
        clock.Advance(TimeSpan.FromMilliseconds(1100));
        Assert.True(rl.Allow(Src("203.0.113.9")));   // this call sweeps
        Assert.Equal(1, rl.Count);
    }

    [Fact]
    public void SteadyStateAllowDoesNotAllocate()
    {
        var clock = NewClock();
        var rl = new HandshakeRateLimiter(clock);
        var sources = Enumerable.Range(1, 64).Select(i => Src($"10.0.{i}.1")).ToArray();
        for (int round = 0; round < 3; round++)
            foreach (var s in sources) { rl.Allow(s); clock.Advance(TimeSpan.FromMilliseconds(1)); }
        clock.Advance(TimeSpan.FromSeconds(2));         // (the fake clock itself may allocate: outside the window)
        long before = GC.GetAllocatedBytesForCurrentThread();
        rl.Allow(sources[0]);                           // sweeps all 64 entries, re-adds one
        for (int round = 0; round < 1000; round++)
            foreach (var s in sources) rl.Allow(s);     // re-adds the others into the freed slots, then hits
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(64, rl.Count);
    }
}
