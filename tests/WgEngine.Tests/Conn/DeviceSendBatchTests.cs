using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using WgEngine.Conn;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Egress;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Conn;

/// <summary>
/// Send batching on threads that are not crypto workers (TUN reader, egress pumps, handshake thread,
/// timers): between WgDevice.BeginSendBatch and EndSendBatch the device collects what the thread sends
/// and hands it to the bind in one SendBatch call at the end; without a scope every packet is one Send.
/// </summary>
public class DeviceSendBatchTests
{
    /// <summary>Records how the device called it: single sends, and the size of every batch.</summary>
    private sealed class CountingBind(ChannelBind inner) : IBind
    {
        public int Sends;
        public readonly ConcurrentQueue<int> Batches = new();
        public int Port => inner.Port;
        public int Receive(Span<byte> buffer, SocketAddress from) => inner.Receive(buffer, from);
        public bool Send(ReadOnlySpan<byte> datagram, SocketAddress to)
        {
            Interlocked.Increment(ref Sends);
            return inner.Send(datagram, to);
        }
        public int SendBatch(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, ReadOnlySpan<SocketAddress> to, Span<bool> sent)
        {
            Batches.Enqueue(datagrams.Length);
            int ok = 0;
            for (int i = 0; i < datagrams.Length; i++)
                if (sent[i] = inner.Send(datagrams[i].Span, to[i])) ok++;
            return ok;
        }
        public SocketAddress ToSocketAddress(IPEndPoint endpoint) => inner.ToSocketAddress(endpoint);
        public IPEndPoint ToEndPoint(SocketAddress address) => inner.ToEndPoint(address);
        public void Dispose() => inner.Dispose();
    }

    /// <summary>A gateway whose egress captures what arrives, and a client on a counting bind routing 10.9.0.0/16 to it.</summary>
    private sealed class Pair : IDisposable
    {
        public readonly WgDevice Gateway, Client;
        public readonly CountingBind ClientBind;
        public readonly CaptureEgress Egress = new();

        public Pair(bool startGateway = true)
        {
            var network = new ChannelNetwork();
            var gwKey = WgPrivateKey.Generate();
            var clientKey = WgPrivateKey.Generate();
            var gwBind = network.CreateBind(41001);
            ClientBind = new CountingBind(network.CreateBind(41002));
            Gateway = new WgDevice(gwKey, gwBind, new DeviceOptions { Addresses = [IpPrefix.Parse("10.8.0.1/24")], Egress = Egress, Workers = 1 });
            Client = new WgDevice(clientKey, ClientBind, new DeviceOptions { Workers = 1 });
            Gateway.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
            Client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["10.9.0.0/16"], gwBind.LocalEndPoint));
            if (startGateway) Gateway.Start();
            Client.Start();
        }

        public static byte[] Packet(int i) => Packets.UdpV4("10.8.0.2", "10.9.0.7", 5000, 6000, BitConverter.GetBytes(i));

        /// <summary>One packet through, so that a session exists; then the counters start from zero.</summary>
        public void Establish()
        {
            Assert.True(Client.SendPacket(Packet(-1)));
            Assert.Equal(Packet(-1), Egress.Next());
            TestNet.WaitFor(() => Client.GetPeer(Gateway.PublicKey)?.LatestHandshake is not null, "the client's session");
            ClientBind.Batches.Clear();
            Interlocked.Exchange(ref ClientBind.Sends, 0);
        }

        public void Dispose()
        {
            Client.Dispose();
            Gateway.Dispose();
        }
    }

    [Fact]
    public void AScopeOnAnOrdinaryThreadSendsItsPacketsInOneBindCallAtTheEnd()
    {
        using var pair = new Pair();
        pair.Establish();

        Assert.True(pair.Client.BeginSendBatch());
        Assert.False(pair.Client.BeginSendBatch());   // nested: the outer scope sends
        for (int i = 0; i < 10; i++) Assert.True(pair.Client.SendPacket(Pair.Packet(i)));
        Assert.Empty(pair.ClientBind.Batches);        // nothing left before the end of the scope
        Assert.Equal(0, pair.ClientBind.Sends);
        pair.Client.EndSendBatch();

        Assert.Equal([10], pair.ClientBind.Batches.ToArray());
        Assert.Equal(0, pair.ClientBind.Sends);
        for (int i = 0; i < 10; i++) Assert.Equal(Pair.Packet(i), pair.Egress.Next());
    }

    [Fact]
    public void WithoutAScopeEachPacketIsOneSend()
    {
        using var pair = new Pair();
        pair.Establish();
        for (int i = 0; i < 5; i++) Assert.True(pair.Client.SendPacket(Pair.Packet(i)));
        Assert.Equal(5, pair.ClientBind.Sends);
        Assert.Empty(pair.ClientBind.Batches);
        pair.Client.EndSendBatch();                   // no scope open: nothing happens
        Assert.Empty(pair.ClientBind.Batches);
        for (int i = 0; i < 5; i++) Assert.Equal(Pair.Packet(i), pair.Egress.Next());
    }

    [Fact]
    public void MoreThanOneBatchInAScopeLeavesWhenFullNotAtTheEnd()
    {
        using var pair = new Pair();
        pair.Establish();
        Assert.True(pair.Client.BeginSendBatch());
        for (int i = 0; i < OutgoingBatch.Size + 3; i++) pair.Client.SendPacket(Pair.Packet(i));
        Assert.Equal([OutgoingBatch.Size], pair.ClientBind.Batches.ToArray());   // a full batch does not wait
        pair.Client.EndSendBatch();
        Assert.Equal([OutgoingBatch.Size, 3], pair.ClientBind.Batches.ToArray());
        for (int i = 0; i < OutgoingBatch.Size + 3; i++) Assert.Equal(Pair.Packet(i), pair.Egress.Next());
    }

    [Fact]
    public void TheSegmentsOfOneSuperPacketLeaveInOneBindCallAndAreCounted()
    {
        // 64 KiB read from a TUN with TSO at MTU 1420 is 46 segments: they must stay in one batch (one GSO send).
        const int segments = 46;
        using var pair = new Pair();
        pair.Establish();
        var before = pair.Client.Counters;
        long batches = before.SendBatches, inBatches = before.SentInBatches;
        long gatewayReceived = pair.Gateway.Counters.ReceivedInBatches;
        Assert.True(pair.Client.BeginSendBatch());
        for (int i = 0; i < segments; i++) Assert.True(pair.Client.SendPacket(Pair.Packet(i)));
        pair.Client.EndSendBatch();

        Assert.Equal([segments], pair.ClientBind.Batches.ToArray());
        Assert.Equal(batches + 1, pair.Client.Counters.SendBatches);
        Assert.Equal(inBatches + segments, pair.Client.Counters.SentInBatches);
        for (int i = 0; i < segments; i++) Assert.Equal(Pair.Packet(i), pair.Egress.Next());
        Assert.True(pair.Gateway.Counters.ReceivedInBatches >= gatewayReceived + segments);
        Assert.True(pair.Gateway.Counters.ReceiveBatches >= 1);
    }

    [Fact]
    public void PacketsStagedForAHandshakeLeaveTogetherWhenItCompletes()
    {
        using var pair = new Pair(startGateway: false);
        // No session yet: all are staged and an initiation goes out (a single Send). The gateway starts
        // (and answers) only once all 20 wait; the handshake thread then flushes them as one batch.
        for (int i = 0; i < 20; i++) Assert.True(pair.Client.SendPacket(Pair.Packet(i)));
        Assert.Empty(pair.ClientBind.Batches);
        pair.Gateway.Start();
        for (int i = 0; i < 20; i++) Assert.Equal(Pair.Packet(i), pair.Egress.Next());
        Assert.Contains(20, pair.ClientBind.Batches);
    }

    [Fact]
    public void TheLateBoundSinkOpensTheDevicesScope()
    {
        using var pair = new Pair();
        pair.Establish();
        IPacketSink sink = new LateBoundPacketSink();
        Assert.False(sink.BeginBatch());              // not attached yet: no scope
        ((LateBoundPacketSink)sink).Attach(pair.Client);
        Assert.True(sink.BeginBatch());
        for (int i = 0; i < 4; i++) Assert.True(sink.SendPacket(Pair.Packet(i)));
        Assert.Empty(pair.ClientBind.Batches);
        sink.EndBatch();
        Assert.Equal([4], pair.ClientBind.Batches.ToArray());
        for (int i = 0; i < 4; i++) Assert.Equal(Pair.Packet(i), pair.Egress.Next());
    }

    [Fact]
    public void AnEmptyScopeAllocatesNothingOnceWarm()
    {
        using var pair = new Pair();
        for (int i = 0; i < 3; i++) { pair.Client.BeginSendBatch(); pair.Client.EndSendBatch(); }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(pair.Client.BeginSendBatch());
            pair.Client.EndSendBatch();
        }
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }
}
