using System.Collections.Concurrent;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>
/// The batch interface from the device to an egress that takes batches (IBatchEgress, the TUN egress):
/// a crypto worker collects its decrypted packets in its own IEgressBatch and flushes it when its queue
/// runs empty; the packets keep their order and none goes past the batch.
/// </summary>
public class EgressBatchTests
{
    /// <summary>Packets become visible only when a batch is flushed; direct deliveries are recorded apart.</summary>
    private sealed class BatchCapture : IBatchEgress
    {
        public readonly ConcurrentQueue<byte[]> Direct = new();
        public readonly ConcurrentQueue<byte[]> Flushed = new();
        public readonly ConcurrentQueue<string?> CreatedOn = new();
        public int Flushes, Pending;

        public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet) => Direct.Enqueue(packet.ToArray());

        public IEgressBatch CreateBatch()
        {
            CreatedOn.Enqueue(Thread.CurrentThread.Name);
            return new Collector(this);
        }

        private sealed class Collector(BatchCapture owner) : IEgressBatch
        {
            private readonly List<byte[]> _pending = [];
            public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet)
            {
                _pending.Add(packet.ToArray());
                Interlocked.Increment(ref owner.Pending);
            }
            public void Flush()
            {
                if (_pending.Count == 0) return;
                foreach (var p in _pending) owner.Flushed.Enqueue(p);
                Interlocked.Add(ref owner.Pending, -_pending.Count);
                _pending.Clear();
                Interlocked.Increment(ref owner.Flushes);
            }
        }
    }

    private static byte[] Packet(int i) => Packets.UdpV4("10.8.0.2", "10.9.0.7", 5000, 6000, BitConverter.GetBytes(i));

    /// <summary>A started gateway (one worker, the capture as its egress, no lone-packet inlining) and a
    /// started client that routes 10.9.0.0/16 to it, on ports <paramref name="port"/> and port + 1.</summary>
    private static (WgDevice Gateway, WgDevice Client, BatchCapture Egress) StartPair(int port, bool inlineBatches)
    {
        var network = new ChannelNetwork();
        var gwKey = WgPrivateKey.Generate();
        var clientKey = WgPrivateKey.Generate();
        var gwBind = network.CreateBind(port);
        var egress = new BatchCapture();
        var gw = new WgDevice(gwKey, gwBind, new DeviceOptions
        {
            Addresses = [IpPrefix.Parse("10.8.0.1/24")], Egress = egress, Workers = 1, InlineLonePackets = false, InlineBatches = inlineBatches,
        });
        var client = new WgDevice(clientKey, network.CreateBind(port + 1), new DeviceOptions { Workers = 1 });
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["10.9.0.0/16"], gwBind.LocalEndPoint));
        gw.Start();
        client.Start();
        return (gw, client, egress);
    }

    [Fact]
    public void A_workers_packets_reach_a_batch_egress_through_its_batch_in_order_and_are_flushed()
    {
        // Every transport packet to the worker (no inline processing on the receive thread).
        var (gw, client, egress) = StartPair(41101, inlineBatches: false);
        using var _ = gw;
        using var __ = client;

        const int count = 200;
        Assert.True(client.SendPacket(Packet(0)));
        TestNet.WaitFor(() => egress.Flushed.Count == 1, "the first packet through the batch");
        Assert.True(client.BeginSendBatch());
        for (int i = 1; i < count; i++) Assert.True(client.SendPacket(Packet(i)));
        client.EndSendBatch();

        TestNet.WaitFor(() => egress.Flushed.Count == count, "every packet flushed");
        Assert.Empty(egress.Direct);
        Assert.Equal(0, Volatile.Read(ref egress.Pending));
        var got = egress.Flushed.ToArray();
        for (int i = 0; i < count; i++) Assert.Equal(Packet(i), got[i]);
        Assert.True(Volatile.Read(ref egress.Flushes) < count, "every packet flushed alone: no batching");
        Assert.Contains("wg-crypto-0", egress.CreatedOn);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Batches_taken_on_the_receive_thread_keep_their_order_and_leave_through_its_own_batch(bool inlineBatches)
    {
        var (gw, client, egress) = StartPair(41103, inlineBatches);
        using var _ = gw;
        using var __ = client;

        Assert.True(client.SendPacket(Packet(0)));
        TestNet.WaitFor(() => egress.Flushed.Count == 1, "the first packet through a batch");
        const int count = 300;
        for (int round = 0; round < 3; round++)
        {
            Assert.True(client.BeginSendBatch());
            for (int i = 1; i <= 100; i++) Assert.True(client.SendPacket(Packet(round * 100 + i)));
            client.EndSendBatch();
        }

        TestNet.WaitFor(() => egress.Flushed.Count == count + 1, "every packet flushed");
        Assert.Empty(egress.Direct);
        Assert.Equal(0, Volatile.Read(ref egress.Pending));
        var got = egress.Flushed.ToArray();
        for (int i = 0; i <= count; i++) Assert.Equal(Packet(i), got[i]);
        long inline = gw.Counters.InlineReceiveBatches;
        if (inlineBatches)
        {
            // The receive thread processed them itself, through a batch of its own.
            Assert.True(inline > 0, "no batch was processed on the receive thread");
            Assert.Contains("wg-receive", egress.CreatedOn);
        }
        else
        {
            Assert.Equal(0, inline);
            Assert.DoesNotContain("wg-receive", egress.CreatedOn);
        }
    }
}
