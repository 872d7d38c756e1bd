using System.Net;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>
/// The data path allocates nothing per packet once warm: three devices over real UDP on loopback, a
/// client sending through the gateway's hub to a second client.
/// </summary>
[Collection(MemoryMeasurement.Name)]
public class SteadyStateAllocationTests
{
    private const int Buffers = 4096;

    /// <param name="withPolicy">Client isolation on and the sender's ACL (ten rules, the last one allowing the
    /// destination): every packet is matched and its flow recorded in the policy between device and hub.</param>
    /// <param name="helpers">Crypto helper threads on every device (batches sealed and runs opened on them; their
    /// allocations count with the packet threads').</param>
    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(false, 1)]
    public void HubForwardingAllocatesNothingPerPacket(bool withPolicy, int helpers)
    {
        var gwKey = WgPrivateKey.Generate();
        var aKey = WgPrivateKey.Generate();
        var bKey = WgPrivateKey.Generate();
        var sink = new CountingEgress();
        using var gw = new WgDevice(gwKey, new UdpBind(0, IPAddress.Loopback), new DeviceOptions { CryptoHelperThreads = helpers, PreallocatedBuffers = Buffers, Addresses = [IpPrefix.Parse("10.8.0.1/24")] });
        using var a = new WgDevice(aKey, new UdpBind(0, IPAddress.Loopback), new DeviceOptions { CryptoHelperThreads = helpers, PreallocatedBuffers = Buffers });
        using var b = new WgDevice(bKey, new UdpBind(0, IPAddress.Loopback), new DeviceOptions { CryptoHelperThreads = helpers, PreallocatedBuffers = Buffers, Egress = sink });
        var gwEndpoint = new IPEndPoint(IPAddress.Loopback, gw.ListenPort);
        var aConfig = TestNet.Peer(aKey.PublicKey, ["10.8.0.2/32"]);
        if (withPolicy)
        {
            gw.Policy.PeerIsolation = true;
            aConfig = aConfig with { Acl = [.. Enumerable.Range(0, 9).SelectMany(i => WgEngine.Policy.AclRule.Parse($"deny 10.{100 + i}.0.0/16 tcp")),
                .. WgEngine.Policy.AclRule.Parse("allow 10.8.0.3/32 udp 2000")] };
        }
        gw.AddPeer(aConfig);
        gw.AddPeer(TestNet.Peer(bKey.PublicKey, ["10.8.0.3/32"], new IPEndPoint(IPAddress.Loopback, b.ListenPort)));
        a.AddPeer(TestNet.Peer(gwKey.PublicKey, ["10.8.0.0/24"], gwEndpoint));
        b.AddPeer(TestNet.Peer(gwKey.PublicKey, ["10.8.0.0/24"], gwEndpoint));
        gw.Start(); a.Start(); b.Start();

        var packet = Packets.UdpV4("10.8.0.2", "10.8.0.3", 1000, 2000, new byte[1200]);
        // Both handshakes first (a packet staged behind two of them), then warm pools and JIT.
        TestNet.WaitFor(() => { a.SendPacket(packet); Thread.Sleep(50); return Interlocked.Read(ref sink.Count) > 0; }, "the first packet through the hub", 10_000);
        PacketPump.Run(a, packet, sink, 2000);

        // Pools are made big enough up front (they would otherwise grow, once, to the deepest backlog
        // seen); something that allocates per packet shows in every round. The best of three counts.
        const int N = 20000;
        double best = PacketPump.BestBytesPerPacket([gw, a, b], a, packet, sink, N);
        // Counted on the devices' own packet threads only (receive, crypto, handshake), so the test
        // runner's allocations do not count; a packet crosses two tunnels and three devices.
        long parallel = gw.ParallelOpenBatches + b.ParallelOpenBatches + a.ParallelSealBatches + gw.ParallelSealBatches;
        Assert.True(best < 1, $"{best:F1} bytes allocated per packet in the best round ({parallel} batches or runs on the helpers)");
        Assert.True(gw.BuffersCreated + a.BuffersCreated + b.BuffersCreated == 0, "the pools had to grow: the backlog exceeded the preallocation");
        if (withPolicy) Assert.Equal(0, gw.Counters.Policy);   // every packet was judged and allowed
    }
}
