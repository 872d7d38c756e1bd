using System.Net;
using WgEngine.Device;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;
using Xunit.Abstractions;

namespace WgEngine.Tests.Device;

/// <summary>
/// Retained memory of the allowed-IPs table. Measured with GC.GetTotalMemory, which counts the whole
/// process, so it runs alone (not alongside other tests that allocate).
/// </summary>
[Collection(MemoryMeasurement.Name)]
public class AllowedIpsMemoryTests(ITestOutputHelper output)
{
    private sealed class Peer(string name)
    {
        public override string ToString() => name;
    }

    [Fact]
    public void Memory_100kHostRoutes_CostWellUnder200BytesEach()
    {
        const int n = 100_000;
        var peers = new Peer[n];
        var prefixes = new IpPrefix[n];
        for (int i = 0; i < n; i++)
        {
            peers[i] = new Peer("p");
            // 10.0.0.1 upward, like addresses allocated from a gateway pool.
            uint ip = 0x0A000001u + (uint)i;
            prefixes[i] = new IpPrefix(new IPAddress(new[] { (byte)(ip >> 24), (byte)(ip >> 16), (byte)(ip >> 8), (byte)ip }), 32);
        }
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var t = new AllowedIps<Peer>();
        for (int i = 0; i < n; i++) t.Insert(prefixes[i], peers[i]);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        double perEntry = (after - before) / (double)n;
        output.WriteLine($"AllowedIps: {n} peers x one /32 = {after - before:N0} bytes, {perEntry:F1} bytes per entry");

        Assert.Equal(n, t.Count);
        Assert.Same(peers[12345], t.Lookup(prefixes[12345].Address));
        Assert.True(perEntry > 0 && perEntry < 200, $"{perEntry:F1} bytes per entry");
        GC.KeepAlive(t);
        GC.KeepAlive(peers);
    }
}
