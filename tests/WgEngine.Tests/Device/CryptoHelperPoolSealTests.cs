using System.Net;
using System.Security.Cryptography;
using WgEngine.Conn;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Session;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>
/// Parallel sealing of an outgoing batch (issue 15 item 3). The packets of one batch are sealed on several
/// cores, and each must come out exactly as sealing it alone would have: same counter, same bytes, same slot.
/// A failure anywhere means nothing of the batch may be sent. Nothing is allocated per batch.
/// </summary>
[Collection(MemoryMeasurement.Name)]
public class CryptoHelperPoolSealTests
{
    /// <summary>An unstarted device (no threads) for the batch's owner and a peer to address packets to.</summary>
    private sealed class Fixture : IDisposable
    {
        public readonly WgDevice Device;
        public readonly Peer Peer;
        public readonly Keypair Keypair = new(isInitiator: true, localIndex: 1, remoteIndex: 0x01020304, createdAt: 0);
        public readonly SocketAddress To = new IPEndPoint(IPAddress.Loopback, 9).Serialize();

        public Fixture()
        {
            Device = new WgDevice(WgPrivateKey.Generate(), new ChannelNetwork().CreateBind(42001));
            var key = WgPrivateKey.Generate().PublicKey;
            Device.AddPeer(TestNet.Peer(key, ["10.8.0.2/32"]));
            Peer = Device.PeerOf(key);
            RandomNumberGenerator.Fill(Keypair.SendKeySpan);
        }

        /// <summary>A batch of <paramref name="count"/> framed packets of varied sizes (keepalives among them), and
        /// what each must be once sealed (sealed alone, in one piece).</summary>
        public (OutgoingBatch Batch, byte[][] Expected) Batch(int count, int seed = 1)
        {
            var rng = new Random(seed);
            var batch = new OutgoingBatch(Device);
            var expected = new byte[count][];
            for (int i = 0; i < count; i++)
            {
                int length = i % 7 == 3 ? 0 : rng.Next(1, 1421);
                int padded = WgDevice.PaddedLength(length, 1420);
                ulong counter = (ulong)(1000 + i);
                var buf = new PacketBuffer();
                rng.NextBytes(buf.Data.AsSpan(16, length));
                var alone = (byte[])buf.Data.Clone();
                int total = Keypair.SealTransport(counter, alone, length, padded);
                expected[i] = alone[..total];
                int framed = Keypair.FrameTransport(counter, buf.Data, length, padded);
                Assert.Equal(total, framed);
                batch.Add(buf, framed, To, Peer, length > 0, Keypair, counter, padded);
            }
            return (batch, expected);
        }

        public void Dispose() => Device.Dispose();
    }

    private static void AssertSealed(OutgoingBatch batch, byte[][] expected)
    {
        Assert.Equal(expected.Length, batch.Count);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Length, batch.Datagrams[i].Length);
            Assert.True(expected[i].AsSpan().SequenceEqual(batch.Datagrams[i].Span), $"slot {i} differs from sealing it alone");
        }
    }

    [Theory]
    [InlineData(0, 46)]
    [InlineData(1, 1)]
    [InlineData(1, 7)]
    [InlineData(1, 8)]
    [InlineData(1, 46)]
    [InlineData(1, 64)]
    [InlineData(3, 9)]
    [InlineData(3, 46)]
    [InlineData(7, 64)]
    public void EverySlotIsSealedAsIfAloneAndTheParallelPathIsTakenForLargeBatches(int helpers, int count)
    {
        using var f = new Fixture();
        using var sealer = new CryptoHelperPool(helpers);
        var (batch, expected) = f.Batch(count);
        sealer.SealAll(batch);
        AssertSealed(batch, expected);
        bool parallel = helpers > 0 && count >= CryptoHelperPool.MinParallelPackets;
        Assert.Equal(parallel ? 1 : 0, sealer.ParallelSealBatches);
    }

    [Fact]
    public void HandshakeMessagesInTheBatchAreLeftAsTheyAre()
    {
        using var f = new Fixture();
        using var sealer = new CryptoHelperPool(1);
        var (batch, expected) = f.Batch(20);
        var raw = new PacketBuffer();
        RandomNumberGenerator.Fill(raw.Data.AsSpan(0, 148));
        var copy = raw.Data[..148];
        batch.Add(raw, 148, f.To, f.Peer, carriesData: false);
        sealer.SealAll(batch);
        Assert.True(copy.AsSpan().SequenceEqual(batch.Datagrams[20].Span));
        AssertSealed(TrimLast(batch), expected);
    }

    // The same batch seen without its last slot (for AssertSealed's count check).
    private static OutgoingBatch TrimLast(OutgoingBatch batch) { batch.Count--; return batch; }

    [Fact]
    public void AFailedSealOnAHelperFailsTheWholeBatchAndTheSealerGoesOn()
    {
        using var f = new Fixture();
        using var sealer = new CryptoHelperPool(1);
        var (batch, _) = f.Batch(16);
        // The last slot (a helper's range) claims a padded length that runs past its buffer: its seal throws.
        var bad = new PacketBuffer();
        batch.Add(bad, 64, f.To, f.Peer, true, f.Keypair, 7, PacketBuffer.Capacity);
        var e = Assert.Throws<InvalidOperationException>(() => sealer.SealAll(batch));
        Assert.IsType<ArgumentOutOfRangeException>(e.InnerException);

        var (next, expected) = f.Batch(16, seed: 2);
        sealer.SealAll(next);
        AssertSealed(next, expected);
        Assert.Equal(2, sealer.ParallelSealBatches);
    }

    [Fact]
    public void TwoThreadsFlushingAtOnceBothGetCorrectBatches()
    {
        using var f = new Fixture();
        using var sealer = new CryptoHelperPool(1);
        var failures = 0;
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            for (int round = 0; round < 200; round++)
            {
                var (batch, expected) = f.Batch(24, seed: t * 1000 + round);
                sealer.SealAll(batch);
                try { AssertSealed(batch, expected); }
                catch (Exception) { Interlocked.Increment(ref failures); }
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(60)), "a flushing thread did not finish");
        Assert.Equal(0, failures);
        Assert.InRange(sealer.ParallelSealBatches, 1, 400);
    }

    [Fact]
    public void SealingABatchAllocatesNothingOnceWarm()
    {
        using var f = new Fixture();
        using var sealer = new CryptoHelperPool(1);
        var (batch, _) = f.Batch(46);
        for (int i = 0; i < 20; i++) sealer.SealAll(batch);   // warm: JIT, the helpers' EVP contexts
        long helpers = sealer.HelperAllocatedBytes;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 500; i++) sealer.SealAll(batch);  // sealing sealed bytes again: the same work
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
        Assert.Equal(helpers, sealer.HelperAllocatedBytes);
        Assert.Equal(520, sealer.ParallelSealBatches);
    }

    [Fact]
    public void ADisposedSealerSealsOnTheCallingThread()
    {
        using var f = new Fixture();
        var sealer = new CryptoHelperPool(2);
        sealer.Dispose();
        var (batch, expected) = f.Batch(32);
        sealer.SealAll(batch);
        AssertSealed(batch, expected);
        Assert.Equal(0, sealer.ParallelSealBatches);
    }

    [Fact]
    public void OnePeersSuperPacketThroughARunningDeviceIsSealedInParallelAndArrivesInOrder()
    {
        // 46 segments of one peer in one send scope (what the TUN reader does with a 64 KiB read): one batch,
        // sealed on two cores, every packet delivered in order by a peer that checks each tag and counter.
        var network = new ChannelNetwork();
        var gwKey = WgPrivateKey.Generate();
        var clientKey = WgPrivateKey.Generate();
        var gwBind = network.CreateBind(42101);
        var egress = new CaptureEgress();
        using var gw = new WgDevice(gwKey, gwBind, new DeviceOptions { Egress = egress, Workers = 1, CryptoHelperThreads = 0 });
        using var client = new WgDevice(clientKey, network.CreateBind(42102), new DeviceOptions { Workers = 1, CryptoHelperThreads = 1 });
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["10.9.0.0/16"], gwBind.LocalEndPoint));
        gw.Start();
        client.Start();
        Assert.Equal(1, client.CryptoHelperThreads);
        static byte[] Packet(int i) => Packets.UdpV4("10.8.0.2", "10.9.0.7", 5000, 6000, new byte[1000 + i]);
        Assert.True(client.SendPacket(Packet(0)));
        Assert.Equal(Packet(0), egress.Next());

        Assert.True(client.BeginSendBatch());
        for (int i = 1; i <= 46; i++) Assert.True(client.SendPacket(Packet(i)));
        client.EndSendBatch();
        for (int i = 1; i <= 46; i++) Assert.Equal(Packet(i), egress.Next());
        Assert.Equal(1, client.ParallelSealBatches);
        Assert.Equal(0, gw.Counters.AuthFailed + gw.Counters.Replayed);
    }
}
