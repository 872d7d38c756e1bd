using System.Net;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Egress.Tcp;
using WgEngine.Tests.PacketPlane;

namespace WgEngine.Tests.Egress.Tcp;

/// <summary>The flow table around the state machine, with a fake connector and a fake clock.</summary>
public class TcpEgressTests
{
    private static readonly WgKey PeerA = new(Enumerable.Repeat((byte)1, 32).ToArray());
    private static readonly WgKey PeerB = new(Enumerable.Repeat((byte)2, 32).ToArray());

    private sealed class Rig : IDisposable
    {
        public readonly FakeTimeProvider Clock = new();
        public readonly CaptureSink Sink = new();
        public readonly FakeConnector Connector = new();
        public readonly EgressCounters Counters = new();
        public readonly TcpEgress Egress;
        public readonly ConnHarness Peer = new();     // only its packet builder is used

        public Rig(int perPeer = 512, int total = 16384)
        {
            var options = new EgressOptions { MaxTcpConnectionsPerPeer = perPeer, MaxTcpConnections = total, TimeProvider = Clock };
            Egress = new TcpEgress(Sink, options, Counters, Connector);
        }

        public byte[] Syn(ushort srcPort, uint seq = 1000) => Build(srcPort, seq, 0, TcpFlags.Syn, mss: 1460, wscale: 7, sackOk: true);

        public byte[] Build(ushort srcPort, uint seq, uint ack, TcpFlags flags, ReadOnlySpan<byte> payload = default, ushort mss = 0, int wscale = -1, bool sackOk = false)
        {
            var buf = new byte[TcpPacketWriter.MaxHeaders + payload.Length];
            var opts = new TcpOptionsOut { Mss = mss, WindowScale = wscale, SackPermitted = sackOk };
            int hl = TcpPacketWriter.WriteHeaders(buf, Peer.Peer, Peer.Remote, srcPort, 8080, seq, ack, flags, 1024, opts, payload.Length);
            payload.CopyTo(buf.AsSpan(hl));
            TcpPacketWriter.Finish(buf, hl + payload.Length);
            return buf.AsSpan(0, hl + payload.Length).ToArray();
        }

        public void Dispose() => Egress.Dispose();
    }

    [Fact]
    public void SynDialsTheDestinationAndAnswersOnlyAfterTheConnect()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40001));
        var attempt = r.Connector.Next();
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.10"), 8080), attempt.Remote);
        r.Egress.OnPacket(PeerA, r.Syn(40001));                  // retransmitted SYN: no second connect
        Assert.Empty(r.Sink.TakeSegments());
        Assert.False(r.Connector.Attempts.TryTake(out _, 50));

        var stream = new FakeStream();
        attempt.Result.SetResult(new HostConnectResult(stream, HostConnectError.None));
        var synAck = r.Sink.Next();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(1001u, synAck.Ack);

        // the handshake completes and data reaches the host stream
        var data = TestPackets.Data(3000, 1);
        r.Egress.OnPacket(PeerA, r.Build(40001, 1001, synAck.Seq + 1, TcpFlags.Ack));
        r.Egress.OnPacket(PeerA, r.Build(40001, 1001, synAck.Seq + 1, TcpFlags.Ack | TcpFlags.Psh, data));
        var got = new List<byte>();
        Wait.Until(() =>
        {
            if (stream.FromEgress.Reader.TryRead(out var rr)) { foreach (var m in rr.Buffer) got.AddRange(m.ToArray()); stream.FromEgress.Reader.AdvanceTo(rr.Buffer.End); }
            return got.Count >= data.Length;
        }, "data at the host");
        Assert.Equal(data, got.ToArray());
        Assert.Equal(1, r.Counters.TcpOpened);
        Assert.Equal(1, r.Counters.TcpActive);
    }

    [Fact]
    public void RefusedConnectResetsThePeerAndFreesTheFlow()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40002));
        r.Connector.Next().Result.SetResult(HostConnectResult.Failed(HostConnectError.Refused));
        var rst = r.Sink.Next();
        Assert.True(rst.Has(TcpFlags.Rst));
        Wait.Until(() => r.Egress.FlowCount == 0, "flow removed");
        Assert.Equal(1, r.Counters.TcpRefused);
    }

    [Fact]
    public void ConnectTimeoutOnTheFakeClockCancelsTheConnect()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40003));
        var attempt = r.Connector.Next();
        r.Clock.Advance(TimeSpan.FromSeconds(9.9));
        Assert.False(attempt.Token.IsCancellationRequested);
        Assert.Empty(r.Sink.TakeSegments());
        r.Clock.Advance(TimeSpan.FromMilliseconds(200));
        Assert.True(attempt.Token.IsCancellationRequested);
        Assert.True(r.Sink.Next().Has(TcpFlags.Rst));
        Wait.Until(() => r.Egress.FlowCount == 0, "flow removed");
        Assert.Equal(1, r.Counters.TcpUnreachable);
    }

    [Fact]
    public void SynFloodIsBoundedPerPeerAndInTotalWithPendingConnectsCounted()
    {
        using var r = new Rig(perPeer: 4, total: 6);
        for (ushort p = 0; p < 100; p++) r.Egress.OnPacket(PeerA, r.Syn((ushort)(20000 + p)));
        Assert.Equal(4, r.Connector.Attempts.Count);              // only four host sockets are ever attempted
        Assert.Equal(96, r.Counters.TcpLimited);
        var rsts = r.Sink.TakeSegments();
        Assert.Equal(96, rsts.Count);
        Assert.All(rsts, s => Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, s.Flags));

        for (ushort p = 0; p < 10; p++) r.Egress.OnPacket(PeerB, r.Syn((ushort)(30000 + p)));
        Assert.Equal(6, r.Connector.Attempts.Count);              // the total limit: 4 + 2
        Assert.Equal(104, r.Counters.TcpLimited);

        r.Connector.Next().Result.SetResult(HostConnectResult.Failed(HostConnectError.Refused)); // one of A's ends
        Wait.Until(() => r.Egress.FlowCount == 5, "refused flow removed");
        r.Sink.TakeSegments();
        r.Egress.OnPacket(PeerA, r.Syn(21000));
        Assert.Equal(6, r.Connector.Attempts.Count);              // 5 left pending + the new one
        Assert.Equal(104, r.Counters.TcpLimited);
    }

    [Fact]
    public void SegmentsOfUnknownFlowsGetRst()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Build(40004, 5000, 777, TcpFlags.Ack, new byte[10]));
        var rst = r.Sink.Next();
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(777u, rst.Seq);                              // RFC 9293: seq = the segment's ACK
        r.Egress.OnPacket(PeerA, r.Build(40004, 5000, 0, TcpFlags.Rst));
        Assert.Empty(r.Sink.TakeSegments());                      // never a RST for a RST
        Assert.Equal(0, r.Egress.FlowCount);
    }

    [Fact]
    public void CorruptChecksumIsCountedAndDropped()
    {
        using var r = new Rig();
        var syn = r.Syn(40005);
        syn[^1] ^= 0x40;
        r.Egress.OnPacket(PeerA, syn);
        Assert.Equal(1, r.Counters.Malformed);
        Assert.Empty(r.Connector.Attempts);
    }

    [Fact]
    public void SameFourTupleFromAnotherPeerIsAnotherFlow()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40006));
        r.Egress.OnPacket(PeerB, r.Syn(40006));
        Assert.Equal(2, r.Egress.FlowCount);
        Assert.Equal(2, r.Connector.Attempts.Count);
    }

    [Fact]
    public void HostEofAndPeerFinCloseTheFlowAndLeaveTheTable()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40007));
        var stream = new FakeStream();
        r.Connector.Next().Result.SetResult(new HostConnectResult(stream, HostConnectError.None));
        var synAck = r.Sink.Next();
        uint ours = synAck.Seq + 1;
        r.Egress.OnPacket(PeerA, r.Build(40007, 1001, ours, TcpFlags.Ack));
        r.Egress.OnPacket(PeerA, r.Build(40007, 1001, ours, TcpFlags.Ack | TcpFlags.Fin)); // peer done
        Wait.Until(() => stream.ShutDown, "host send side shut down");
        stream.ToEgress.Writer.Complete();                        // host EOF
        Seg fin;
        do fin = r.Sink.Next(); while (!fin.Has(TcpFlags.Fin));
        r.Egress.OnPacket(PeerA, r.Build(40007, 1002, fin.Seq + 1, TcpFlags.Ack));
        Wait.Until(() => r.Egress.FlowCount == 0, "flow gone after LAST_ACK");
        Assert.Equal(0, r.Counters.TcpActive);
        Assert.False(stream.Aborted);
    }

    [Fact]
    public void PeerRstAbortsTheHostStream()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40008));
        var stream = new FakeStream();
        r.Connector.Next().Result.SetResult(new HostConnectResult(stream, HostConnectError.None));
        var synAck = r.Sink.Next();
        r.Egress.OnPacket(PeerA, r.Build(40008, 1001, synAck.Seq + 1, TcpFlags.Ack));
        r.Egress.OnPacket(PeerA, r.Build(40008, 1001, 0, TcpFlags.Rst));
        Wait.Until(() => stream.Aborted, "host stream aborted");
        Wait.Until(() => r.Egress.FlowCount == 0, "flow removed");
        Assert.Equal(1, r.Counters.TcpResets);
    }

    [Fact]
    public void HostErrorResetsThePeer()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40009));
        var stream = new FakeStream();
        r.Connector.Next().Result.SetResult(new HostConnectResult(stream, HostConnectError.None));
        var synAck = r.Sink.Next();
        r.Egress.OnPacket(PeerA, r.Build(40009, 1001, synAck.Seq + 1, TcpFlags.Ack));
        stream.ToEgress.Writer.Complete(new IOException("connection reset"));
        Seg s;
        do s = r.Sink.Next(); while (!s.Has(TcpFlags.Rst));
        Wait.Until(() => r.Egress.FlowCount == 0, "flow removed");
    }

    [Fact]
    public void TimeWaitFlowsDoNotCountAgainstLimitsAndExpireOnTheClock()
    {
        using var r = new Rig(perPeer: 1, total: 10);
        r.Egress.OnPacket(PeerA, r.Syn(40010));
        var stream = new FakeStream();
        r.Connector.Next().Result.SetResult(new HostConnectResult(stream, HostConnectError.None));
        var synAck = r.Sink.Next();
        uint ours = synAck.Seq + 1;
        r.Egress.OnPacket(PeerA, r.Build(40010, 1001, ours, TcpFlags.Ack));
        stream.ToEgress.Writer.Complete();                        // the host closes first: we go to TIME_WAIT
        Seg fin;
        do fin = r.Sink.Next(); while (!fin.Has(TcpFlags.Fin));
        r.Egress.OnPacket(PeerA, r.Build(40010, 1001, fin.Seq + 1, TcpFlags.Ack | TcpFlags.Fin));
        Wait.Until(() => r.Egress.CountedFlows == 0, "TIME_WAIT flow uncounted");
        Assert.Equal(1, r.Egress.FlowCount);

        r.Egress.OnPacket(PeerA, r.Syn(40011));                  // the per-peer limit of 1 has room again
        Assert.Equal(0, r.Counters.TcpLimited);
        r.Connector.Next().Result.SetResult(new HostConnectResult(new FakeStream(), HostConnectError.None));
        Seg s;
        do s = r.Sink.Next(); while (!s.Has(TcpFlags.Syn));      // the second flow is past its connect
        Assert.Equal(2, r.Egress.FlowCount);
        r.Egress.OnPacket(PeerA, r.Syn(40012));                  // ...but only for one
        Assert.Equal(1, r.Counters.TcpLimited);

        r.Clock.Advance(TimeSpan.FromSeconds(61));                // 2MSL passes on the fake clock
        Wait.Until(() => r.Egress.FlowCount == 1, "TIME_WAIT flow expired");
    }

    [Fact]
    public void NewSynReplacesATimeWaitFlowOfTheSameTuple()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40013));
        var stream = new FakeStream();
        r.Connector.Next().Result.SetResult(new HostConnectResult(stream, HostConnectError.None));
        var synAck = r.Sink.Next();
        r.Egress.OnPacket(PeerA, r.Build(40013, 1001, synAck.Seq + 1, TcpFlags.Ack));
        stream.ToEgress.Writer.Complete();
        Seg fin;
        do fin = r.Sink.Next(); while (!fin.Has(TcpFlags.Fin));
        r.Egress.OnPacket(PeerA, r.Build(40013, 1001, fin.Seq + 1, TcpFlags.Ack | TcpFlags.Fin));
        Wait.Until(() => r.Egress.CountedFlows == 0, "in TIME_WAIT");
        r.Sink.TakeSegments();

        r.Egress.OnPacket(PeerA, r.Syn(40013, seq: 900_000));    // the client reuses its port
        var again = r.Connector.Next();                           // a fresh host connect
        again.Result.SetResult(new HostConnectResult(new FakeStream(), HostConnectError.None));
        var synAck2 = r.Sink.Next();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck2.Flags);
        Assert.Equal(900_001u, synAck2.Ack);
    }

    [Fact]
    public async Task IdleFlowsHandTheirBuffersBack()
    {
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40014));
        var stream = new FakeStream();
        r.Connector.Next().Result.SetResult(new HostConnectResult(stream, HostConnectError.None));
        var synAck = r.Sink.Next();
        uint ours = synAck.Seq + 1;
        r.Egress.OnPacket(PeerA, r.Build(40014, 1001, ours, TcpFlags.Ack));
        Wait.Until(() => r.Egress.BufferBytes == 0, "no buffers while idle");

        r.Egress.OnPacket(PeerA, r.Build(40014, 1001, ours, TcpFlags.Ack, TestPackets.Data(1000, 1)));
        Assert.True(r.Egress.BufferBytes > 0 || stream.FromEgress.Reader.TryRead(out _)); // rented for the data (or already written)
        Wait.Until(() => r.Egress.BufferBytes == 0, "receive buffer back after the host took the data");

        await stream.ToEgress.Writer.WriteAsync(TestPackets.Data(500, 2));
        Seg data;
        do data = r.Sink.Next(); while (data.Payload.Length == 0);
        Assert.Equal(500, data.Payload.Length);
        Assert.True(r.Egress.BufferBytes > 0);                    // unacknowledged: still held for retransmission
        r.Egress.OnPacket(PeerA, r.Build(40014, 2001, ours + 500, TcpFlags.Ack));
        Wait.Until(() => r.Egress.BufferBytes == 0, "send buffer back after the peer's ACK");
    }

    [Fact]
    public async Task PeerFinDoesNotTakeTheSendBufferFromAReadInProgress()
    {
        // The host fills the whole send ring, so the reader's next read goes straight into ring memory and
        // waits there. When the peer's FIN ends the other pump, that read must keep its ring: handing the
        // array back under it would lose what the host sends next (or reset the flow).
        using var r = new Rig();
        r.Egress.OnPacket(PeerA, r.Syn(40015));
        var stream = new FakeStream();
        r.Connector.Next().Result.SetResult(new HostConnectResult(stream, HostConnectError.None));
        uint ours = r.Sink.Next().Seq + 1;
        r.Egress.OnPacket(PeerA, r.Build(40015, 1001, ours, TcpFlags.Ack));
        int ring = new EgressOptions().TcpBufferBytes;
        await stream.ToEgress.Writer.WriteAsync(TestPackets.Data(ring, 3));
        uint acked = ours;
        Wait.Until(() =>
        {
            foreach (var s in r.Sink.TakeSegments())
                if (s.Payload.Length > 0 && s.Seq == acked) acked += (uint)s.Payload.Length;
            r.Egress.OnPacket(PeerA, r.Build(40015, 1001, acked, TcpFlags.Ack));
            return acked == ours + (uint)ring;
        }, "the whole ring sent and acknowledged");
        // The reader's next read goes into the send ring's memory; it is issued asynchronously after the last ACK.
        Wait.Until(() => r.Egress.BufferBytes > 0, "the host reader to wait in the send ring's memory");

        r.Egress.OnPacket(PeerA, r.Build(40015, 1001, acked, TcpFlags.Ack | TcpFlags.Fin));
        Wait.Until(() => stream.ShutDown, "the peer's FIN passed on to the host");
        var more = TestPackets.Data(1000, 4);
        await stream.ToEgress.Writer.WriteAsync(more);
        Seg next;
        do next = r.Sink.Next(); while (next.Payload.Length == 0 && !next.Has(TcpFlags.Rst));
        Assert.False(next.Has(TcpFlags.Rst));
        Assert.Equal(acked, next.Seq);
        Assert.Equal(more, next.Payload);
    }
}
