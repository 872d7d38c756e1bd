using WgEngine.Egress.Tcp;
using WgEngine.Tests.PacketPlane;

namespace WgEngine.Tests.Egress.Tcp;

public class TcpDataTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DataBothWaysInOrder(bool v6)
    {
        using var h = new ConnHarness(v6);
        h.Establish();
        var up = TestPackets.Data(3000, 1);
        h.SendData(up.AsSpan(0, 1380));
        h.SendData(up.AsSpan(1380, 1380));
        h.SendData(up.AsSpan(2760));
        Assert.Equal(up, h.HostRead());
        var acks = h.Take();
        Assert.Equal(h.PeerNxt, acks[^1].Ack);

        var down = TestPackets.Data(10_000, 2);
        Assert.Equal(down.Length, h.Conn.WriteSendData(down, h.Now));
        var segs = h.Take();
        Assert.All(segs, s => Assert.True(s.Payload.Length <= h.Conn.Mss));
        Assert.Equal(down, h.Received.ToArray());
        Assert.True(segs[^1].Has(TcpFlags.Psh));
    }

    [Fact]
    public void SendingRespectsThePeersScaledWindow()
    {
        using var h = new ConnHarness();
        h.Establish(peerWindowAfter: 4096);                       // 32 << 7
        h.Conn.WriteSendData(TestPackets.Data(20_000, 3), h.Now);
        // full segments up to the window; the runt that would fill it waits (sender SWS avoidance)
        Assert.Equal(2 * 1380, h.Take().Sum(s => s.Payload.Length));
        h.Ack(8192);                                              // acks those, 8192 open from there
        Assert.Equal(5 * 1380, h.Take().Sum(s => s.Payload.Length));
        h.Ack(0);                                                 // all acked, window closed
        Assert.Empty(h.Take());
        h.Ack(1024);                                              // nothing in flight: a short window is used
        Assert.Equal(1024, Assert.Single(h.Take()).Payload.Length);
    }

    [Fact]
    public void LossIsRepairedByRtoWithBackoffAndKarn()
    {
        using var h = new ConnHarness();
        h.Establish();
        var rtoBefore = h.Conn.Rtt.Rto;
        h.Conn.WriteSendData(TestPackets.Data(1000, 4), h.Now);
        var first = Assert.Single(h.Take());
        h.PeerRcvNxt = first.Seq;                                 // the peer never got it
        h.Received.Clear();

        h.Advance(rtoBefore - TimeSpan.FromMilliseconds(1));
        Assert.Empty(h.Take());
        h.Advance(TimeSpan.FromMilliseconds(1));
        var re1 = Assert.Single(h.Take());
        Assert.Equal(first.Seq, re1.Seq);
        Assert.Equal(first.Payload, re1.Payload);
        Assert.Equal(1, h.Counters.TcpRetransmits);

        h.Advance(rtoBefore * 2 - TimeSpan.FromMilliseconds(1));  // backed off: twice as long
        Assert.Empty(h.Take());
        h.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(first.Seq, Assert.Single(h.Take()).Seq);
        Assert.Equal(2, h.Counters.TcpRetransmits);

        var srttBefore = h.Conn.Rtt.Srtt;
        h.Advance(TimeSpan.FromMilliseconds(10));
        h.Ack();                                                  // acks a retransmitted segment
        Assert.Equal(srttBefore, h.Conn.Rtt.Srtt);                // Karn: no sample from it
        h.Advance(TimeSpan.FromSeconds(30));
        Assert.Empty(h.Take());                                   // timer stopped: nothing outstanding
    }

    [Fact]
    public void NextDeadlineNamesTheEarliestTimer()
    {
        using var h = new ConnHarness();
        h.Establish();
        Assert.Equal(h.Now + h.Options.TcpIdleTimeout, h.Conn.NextDeadline);  // nothing outstanding: only idle
        h.Conn.WriteSendData(TestPackets.Data(100, 13), h.Now);
        h.Take();
        Assert.Equal(h.Now + h.Conn.Rtt.Rto, h.Conn.NextDeadline);            // the retransmission timer
        h.SendData(TestPackets.Data(1380, 14));                                // one full segment: ACK delayed
        Assert.Empty(h.Take());
        Assert.Equal(TimeSpan.Zero, h.Conn.NextDeadline);                      // the delayed ACK is due at the next sweep
        h.Advance(TimeSpan.Zero);
        Assert.Single(h.Take());
    }

    [Fact]
    public void RttSampleSetsRtoWithFloor()
    {
        using var h = new ConnHarness();
        h.Syn();
        h.Conn.HostConnected(h.Now);
        h.PeerRcvNxt = h.Take()[0].Seq + 1;
        h.Now += TimeSpan.FromMilliseconds(40);
        h.Ack();                                                  // the SYN-ACK's round trip: 40 ms
        Assert.Equal(TimeSpan.FromMilliseconds(40), h.Conn.Rtt.Srtt);
        Assert.Equal(TimeSpan.FromMilliseconds(200), h.Conn.Rtt.Rto); // 40 + 4*20 < 200 ms minimum

        h.Conn.WriteSendData(TestPackets.Data(100, 5), h.Now);
        h.Take();
        h.Now += TimeSpan.FromMilliseconds(400);
        h.Ack();
        Assert.Equal(TimeSpan.FromMilliseconds(85), h.Conn.Rtt.Srtt);  // 7/8*40 + 1/8*400
        Assert.True(h.Conn.Rtt.Rto > TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void DuplicatesAreIgnoredAndReAcked()
    {
        using var h = new ConnHarness();
        h.Establish();
        var data = TestPackets.Data(500, 6);
        uint seq = h.PeerNxt;
        h.SendData(data);
        h.Take();
        h.Feed(h.Packet(seq, h.PeerRcvNxt, TcpFlags.Ack, 511, data));     // the same segment again
        var reAck = Assert.Single(h.Take());
        Assert.Equal(seq + 500, reAck.Ack);
        h.Feed(h.Packet(seq + 200, h.PeerRcvNxt, TcpFlags.Ack, 511, data.AsSpan(200, 300))); // overlapping tail
        Assert.Single(h.Take());
        Assert.Equal(data, h.HostRead());                         // delivered once
    }

    [Fact]
    public void SegmentAcknowledgingUnsentDataIsDroppedWithAnAck()
    {
        using var h = new ConnHarness();
        h.Establish();
        h.Feed(h.Packet(h.PeerNxt, h.PeerRcvNxt + 5000, TcpFlags.Ack, 511, TestPackets.Data(100, 12)));
        var ack = Assert.Single(h.Take());
        Assert.Equal(h.PeerNxt, ack.Ack);                         // the data was not taken
        Assert.Equal(0, h.Conn.ReceivedCount);
    }

    [Fact]
    public void ReorderedSegmentsAreBufferedAndSackedThenDeliveredInOrder()
    {
        using var h = new ConnHarness();
        h.Establish(sackOk: true);
        var data = TestPackets.Data(4000, 7);
        uint s0 = h.PeerNxt;
        h.Feed(h.Packet(s0 + 3000, h.PeerRcvNxt, TcpFlags.Ack, 511, data.AsSpan(3000)));
        h.Feed(h.Packet(s0 + 1000, h.PeerRcvNxt, TcpFlags.Ack, 511, data.AsSpan(1000, 1000)));
        var dups = h.Take();
        Assert.Equal(2, dups.Count);
        Assert.All(dups, a => Assert.Equal(s0, a.Ack));           // still waiting for the first byte
        Assert.Equal(new uint[] { s0 + 1000, s0 + 2000, s0 + 3000, s0 + 4000 }, dups[1].Sack); // newest block first
        Assert.Equal(0, h.Conn.ReceivedCount);

        h.Feed(h.Packet(s0 + 2000, h.PeerRcvNxt, TcpFlags.Ack, 511, data.AsSpan(2000, 1000)));
        Assert.Equal(new uint[] { s0 + 1000, s0 + 4000 }, h.Take()[0].Sack);   // merged
        h.Feed(h.Packet(s0, h.PeerRcvNxt, TcpFlags.Ack, 511, data.AsSpan(0, 1000)));
        var ack = Assert.Single(h.Take());                        // the gap closed: ACK at once
        Assert.Equal(s0 + 4000, ack.Ack);
        Assert.Empty(ack.Sack);
        Assert.Equal(data, h.HostRead());
    }

    [Fact]
    public void SlowHostReaderClosesTheWindowThenReopensIt()
    {
        using var h = new ConnHarness(buffer: 8192);
        var synAck = h.Establish(wscale: -1);                     // no scaling: windows are plain bytes
        Assert.Equal(8192, synAck.Window);
        var data = TestPackets.Data(8192 + 1000, 8);
        for (int off = 0; off < 8192; off += 1024) h.SendData(data.AsSpan(off, 1024));
        var acks = h.Take();
        Assert.Equal(0, acks[^1].Window);                         // full buffer: zero window
        h.Feed(h.Packet(h.PeerNxt, h.PeerRcvNxt, TcpFlags.Ack, 65535, data.AsSpan(8192, 1000)));
        var refused = Assert.Single(h.Take());
        Assert.Equal(h.PeerNxt, refused.Ack);                     // not accepted
        Assert.Equal(0, refused.Window);

        var m = h.Conn.ReceivedReadable;
        h.Conn.ConsumeReceived(1000, h.Now);                      // less than the update threshold
        Assert.Empty(h.Take());
        h.Conn.ConsumeReceived(3000, h.Now);
        var update = Assert.Single(h.Take());                     // window update
        Assert.Equal(4000, update.Window);
        Assert.Equal(data.AsSpan(0, m.Length).ToArray(), m.ToArray());
    }

    [Fact]
    public void ZeroPeerWindowGetsPersistProbesUntilItOpens()
    {
        using var h = new ConnHarness();
        h.Establish(peerWindowAfter: 0);
        var data = TestPackets.Data(3000, 9);
        Assert.Equal(3000, h.Conn.WriteSendData(data, h.Now));
        Assert.Empty(h.Take());                                   // nothing may be sent
        h.Advance(h.Conn.Rtt.Rto);
        var probe = Assert.Single(h.Take());
        Assert.Empty(probe.Payload);
        Assert.Equal(h.PeerRcvNxt - 1, probe.Seq);                 // an old sequence number elicits an ACK
        h.Advance(h.Conn.Rtt.Rto);
        Assert.Empty(h.Take());                                   // backed off
        h.Advance(h.Conn.Rtt.Rto);
        Assert.Single(h.Take());
        h.Ack(65535);                                             // window opens
        h.Take();
        Assert.Equal(data, h.Received.ToArray());
    }

    [Fact]
    public void ThreeDuplicateAcksTriggerFastRetransmit()
    {
        using var h = new ConnHarness();
        h.Establish();
        h.Conn.WriteSendData(TestPackets.Data(1380 * 6, 10), h.Now);
        var segs = h.Take();
        Assert.Equal(6, segs.Count);
        uint lost = segs[1].Seq;
        h.AckUpTo(lost);                                          // first segment arrived
        for (int i = 0; i < 2; i++) h.AckUpTo(lost);
        Assert.DoesNotContain(h.Take(), s => s.Seq == lost);
        h.AckUpTo(lost);                                          // third duplicate
        var re = h.Take();
        Assert.Contains(re, s => s.Seq == lost && s.Payload.Length == 1380);
        Assert.Equal(1, h.Counters.TcpRetransmits);
        h.AckUpTo(segs[2].Seq);                                   // partial ACK: the next hole goes at once (NewReno)
        Assert.Contains(h.Take(), s => s.Seq == segs[2].Seq);
    }

    [Fact]
    public void SackBlocksLetRecoveryRepairSeveralHolesWithoutWaitingARoundTrip()
    {
        using var h = new ConnHarness();
        h.Establish(sackOk: true);
        h.Conn.WriteSendData(TestPackets.Data(1380 * 8, 15), h.Now);
        var segs = h.Take();
        Assert.Equal(8, segs.Count);
        uint S(int i) => segs[i].Seq;
        uint E(int i) => segs[i].Seq + 1380;
        // segments 1 and 4 are lost; the peer SACKs what it holds with each duplicate ACK
        void DupAck(params uint[] sack) => h.Feed(h.Packet(h.PeerNxt, S(1), TcpFlags.Ack, 511, default, sack: sack));
        h.AckUpTo(S(1));
        DupAck(S(2), E(2));
        DupAck(S(2), E(3));
        DupAck(S(5), E(5), S(2), E(3));                           // third: fast retransmit of segment 1
        var re = h.Take();
        Assert.Equal(new[] { S(1) }, re.Select(s => s.Seq).ToArray());
        DupAck(S(5), E(6), S(2), E(3));                           // fourth: the next hole, segment 4, at once
        re = h.Take();
        Assert.Equal(new[] { S(4) }, re.Select(s => s.Seq).ToArray());
        Assert.Equal(2, h.Counters.TcpRetransmits);
        DupAck(S(5), E(7), S(2), E(3));                           // no holes left below the SACKed data
        Assert.DoesNotContain(h.Take(), s => s.Seq == S(1) || s.Seq == S(4));
        h.AckUpTo(E(3));                                          // partial ACK: segment 4 was resent already
        Assert.DoesNotContain(h.Take(), s => s.Seq == S(4));
        h.AckUpTo(E(7));
        Assert.Equal(2, h.Counters.TcpRetransmits);
    }

    [Fact]
    public void DataAcrossSequenceWrapAndRingWrap()
    {
        using var h = new ConnHarness(buffer: 4096);
        h.Establish(wscale: -1);
        var all = TestPackets.Data(50_000, 11);
        int written = 0;
        for (int round = 0; round < 200 && h.Received.Count < all.Length; round++)
        {
            written += h.Conn.WriteSendData(all.AsSpan(written), h.Now);
            h.Take();
            h.Ack(65535, shift: 0);
        }
        Assert.Equal(all, h.Received.ToArray());                  // OurIss sits just below 2^32
    }
}
