using System.Net;
using System.Net.Sockets;
using System.Reflection;
using WgEngine.Contracts;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Gateway;

/// <summary>VPNServer.Metrics: one snapshot holding every counter the engine keeps.</summary>
public sealed class ServerMetricsTests
{
    [Fact]
    public void Every_drop_counter_of_the_device_has_a_reason_in_the_snapshot()
    {
        // A drop counter added to DeviceCounters but not to DropsByReason would vanish from the metrics.
        var dropFields = typeof(DeviceCounters).GetFields(BindingFlags.Instance | BindingFlags.NonPublic)
            .Where(f => f.Name.StartsWith("Dropped", StringComparison.Ordinal)).ToList();
        var counters = new DeviceCounters();
        long n = 1;
        foreach (var f in dropFields) f.SetValue(counters, n++);
        var drops = counters.DropsByReason();
        Assert.Equal(dropFields.Count, drops.Count);
        Assert.Equal(counters.TotalDropped, drops.Values.Sum());
        Assert.Equal(dropFields.Count, drops.Values.Distinct().Count());   // each reason reads its own field
    }

    [Fact]
    public void Malformed_and_forged_packets_are_counted_by_reason_and_the_egress_counters_are_there()
    {
        using var server = VPNServer.Start(new ServerOptions
        {
            Name = "metrics", ListenPort = 0, BindAddress = IPAddress.Loopback, Addresses = [IpPrefixOf("10.77.0.1/24")],
        });
        var before = server.Metrics;
        Assert.Equal(0, before.Drops["Malformed"]);
        Assert.NotNull(before.Egress);             // the default egress is the userspace one
        Assert.Contains("TcpOpened", before.Egress!.Keys);
        Assert.Null(before.Tun);
        Assert.NotNull(before.Policy);

        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var to = new IPEndPoint(IPAddress.Loopback, server.ListenPort);
        udp.Send([1, 2, 3], to);                                  // shorter than any message
        var forged = new byte[148];                               // an initiation's size, type 1, with a wrong mac1
        forged[0] = 1;
        Random.Shared.NextBytes(forged.AsSpan(4));
        udp.Send(forged, to);

        TestNet.WaitFor(() => server.Metrics.Drops["Malformed"] >= 1 && server.Metrics.Drops["BadMac1"] >= 1, "both drops to be counted");
        var after = server.Metrics;
        Assert.Equal(server.Stats.DroppedPackets, after.DroppedPackets);
        Assert.Equal(0, after.HandshakesCompleted);
        Assert.Equal(0, after.Drops["AuthFailed"]);
    }

    [Fact]
    public void A_backend_that_reports_only_interface_stats_gives_its_drops_unclassified()
    {
        FakeBackend? fake = null;
        using var server = VPNServer.Start(new ServerOptions { Name = "fake", Egress = EgressMode.None, BackendFactory = c => fake = new FakeBackend(c) });
        fake!.Stats = new InterfaceStats(100, 200, 7, 1, 0, 2, 3);
        var m = server.Metrics;
        Assert.Equal(7, m.DroppedPackets);
        Assert.Equal(100, m.ReceivedBytes);
        Assert.Equal(server.Stats.DroppedPackets, m.Drops["Unclassified"]);
        Assert.Null(m.Egress);
    }

    private static Net.IpPrefix IpPrefixOf(string text) => Net.IpPrefix.Parse(text);
}
