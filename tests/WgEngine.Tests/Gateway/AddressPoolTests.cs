using System.Diagnostics;
using System.Net;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgEngine.Tests.Gateway;

public class AddressPoolTests
{
    private static AddressPool Pool(string prefix, params string[] exclude) =>
        new(IpPrefix.Parse(prefix), exclude.Select(IPAddress.Parse));

    private static List<string> Drain(AddressPool pool)
    {
        var list = new List<string>();
        while (pool.TryAllocate(out var a)) list.Add(a.ToString());
        return list;
    }

    [Fact]
    public void V4_slash_29_skips_network_broadcast_and_gateway()
    {
        var got = Drain(Pool("10.8.0.1/29", "10.8.0.1"));
        Assert.Equal(new[] { "10.8.0.2", "10.8.0.3", "10.8.0.4", "10.8.0.5", "10.8.0.6" }, got);
    }

    [Fact]
    public void V4_slash_30_with_gateway_has_exactly_one_client_address()
    {
        Assert.Equal(new[] { "192.168.7.2" }, Drain(Pool("192.168.7.1/30", "192.168.7.1")));
    }

    [Fact]
    public void Gateway_in_the_middle_is_skipped()
    {
        var got = Drain(Pool("10.0.0.0/29", "10.0.0.3"));
        Assert.Equal(new[] { "10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6" }, got);
    }

    [Fact]
    public void V6_skips_only_the_subnet_router_address_and_the_gateway()
    {
        var pool = Pool("fd00:8::1/126", "fd00:8::1");
        Assert.Equal(new[] { "fd00:8::2", "fd00:8::3" }, Drain(pool));
    }

    [Fact]
    public void Released_address_is_reused_lowest_first()
    {
        var pool = Pool("10.8.0.1/24", "10.8.0.1");
        var a = Enumerable.Range(0, 5).Select(_ => { pool.TryAllocate(out var x); return x; }).ToList();
        pool.Release(a[3]);
        pool.Release(a[1]);
        Assert.True(pool.TryAllocate(out var r1));
        Assert.True(pool.TryAllocate(out var r2));
        Assert.True(pool.TryAllocate(out var r3));
        Assert.Equal(a[1], r1);
        Assert.Equal(a[3], r2);
        Assert.Equal(IPAddress.Parse("10.8.0.7"), r3);
    }

    [Fact]
    public void Released_address_is_reused_after_exhaustion()
    {
        var pool = Pool("10.8.0.1/30", "10.8.0.1");
        Assert.True(pool.TryAllocate(out var only));
        Assert.False(pool.TryAllocate(out _));
        pool.Release(only);
        Assert.True(pool.TryAllocate(out var again));
        Assert.Equal(only, again);
    }

    [Fact]
    public void Marked_addresses_are_skipped_and_veto_is_honoured()
    {
        var pool = Pool("10.8.0.1/28", "10.8.0.1");
        Assert.True(pool.MarkUsed(IPAddress.Parse("10.8.0.2")));
        Assert.False(pool.MarkUsed(IPAddress.Parse("10.8.0.2")));
        Assert.False(pool.MarkUsed(IPAddress.Parse("10.9.0.2")));
        Assert.True(pool.TryAllocate(out var a, x => x.Equals(IPAddress.Parse("10.8.0.3"))));
        Assert.Equal(IPAddress.Parse("10.8.0.4"), a);
    }

    [Fact]
    public void ReleaseRange_makes_vetoed_addresses_candidates_again()
    {
        var pool = Pool("10.8.0.1/28", "10.8.0.1");
        var blocked = IpPrefix.Parse("10.8.0.0/30");
        Assert.True(pool.TryAllocate(out var a, x => blocked.Contains(x)));
        Assert.Equal(IPAddress.Parse("10.8.0.4"), a);
        pool.ReleaseRange(blocked);
        Assert.True(pool.TryAllocate(out var b));
        Assert.Equal(IPAddress.Parse("10.8.0.2"), b);
    }

    [Fact]
    public void Hundred_thousand_allocations_are_fast_and_unique()
    {
        var pool = Pool("10.0.0.1/8", "10.0.0.1");
        var seen = new HashSet<IPAddress>();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 100_000; i++)
        {
            Assert.True(pool.TryAllocate(out var a));
            Assert.True(seen.Add(a));
        }
        // Release every other one and take them back: the freed set must serve them, not a rescan.
        int k = 0;
        foreach (var a in seen) if (k++ % 2 == 0) pool.Release(a);
        for (int i = 0; i < 50_000; i++) Assert.True(pool.TryAllocate(out _));
        sw.Stop();
        Assert.DoesNotContain(IPAddress.Parse("10.0.0.1"), seen);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"150k operations took {sw.Elapsed}");
        Assert.Equal(100_000, pool.UsedCount);
    }
}
