using WgEngine.Egress.Tcp;
using WgEngine.Tests.PacketPlane;

namespace WgEngine.Tests.Egress.Tcp;

public class TcpCloseTests
{
    [Fact]
    public void PeerClosesFirstHalfCloseThenHostFinishes()
    {
        using var h = new ConnHarness();
        h.Establish();
        var last = TestPackets.Data(100, 1);
        h.SendData(last, TcpFlags.Fin);
        Assert.Equal(TcpState.CloseWait, h.Conn.State);
        Assert.Equal(h.PeerNxt, h.Take()[^1].Ack);               // the FIN is acknowledged
        Assert.False(h.Conn.PeerFinDelivered);                    // data first
        Assert.Equal(last, h.HostRead());
        Assert.True(h.Conn.PeerFinDelivered);                     // now shut the host socket's send side

        var reply = TestPackets.Data(5000, 2);                    // half-closed: the host may still send
        h.Conn.WriteSendData(reply, h.Now);
        h.Take();
        Assert.Equal(reply, h.Received.ToArray());
        h.Ack();
        h.Conn.HostEof(h.Now);
        var fin = Assert.Single(h.Take());
        Assert.True(fin.Has(TcpFlags.Fin));
        Assert.Equal(TcpState.LastAck, h.Conn.State);
        h.Ack();
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.False(h.Conn.AbortHost);
        Assert.Equal(0, h.Counters.TcpActive);
    }

    [Fact]
    public void HostClosesFirstPeerKeepsSendingThenTimeWaitExpires()
    {
        using var h = new ConnHarness();
        h.Establish();
        h.Conn.WriteSendData(TestPackets.Data(300, 3), h.Now);
        h.Conn.HostEof(h.Now);
        var segs = h.Take();
        Assert.True(segs[^1].Has(TcpFlags.Fin));
        Assert.Equal(TcpState.FinWait1, h.Conn.State);
        h.Ack();
        Assert.Equal(TcpState.FinWait2, h.Conn.State);
        Assert.Equal(0, h.Conn.SendFree);                         // nothing more is read from the host

        var late = TestPackets.Data(2000, 4);                     // the peer's half is still open
        h.SendData(late);
        Assert.Equal(late, h.HostRead());
        h.SendData(default, TcpFlags.Fin);
        Assert.Equal(TcpState.TimeWait, h.Conn.State);
        Assert.Equal(h.PeerNxt, h.Take()[^1].Ack);

        h.Advance(TimeSpan.FromSeconds(30));
        h.Feed(h.Packet(h.PeerNxt - 1, h.PeerRcvNxt, TcpFlags.Fin | TcpFlags.Ack, 511)); // our ACK was lost
        Assert.Equal(h.PeerNxt, Assert.Single(h.Take()).Ack);
        h.Advance(h.Options.TcpTimeWait - TimeSpan.FromSeconds(1)); // restarted 2MSL
        Assert.Equal(TcpState.TimeWait, h.Conn.State);
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.Empty(h.Take());
    }

    [Fact]
    public void TimeWaitAcksDataRetransmittedAfterOurAcksWereLost()
    {
        // The peer's last window of data and its FIN arrive, but our ACKs for them are lost: the peer goes
        // back to its first unacknowledged byte and resends data (not the FIN). TIME_WAIT must answer it.
        using var h = new ConnHarness();
        h.Establish();
        h.Conn.HostEof(h.Now);                                    // the host finished first
        Assert.True(h.Take()[^1].Has(TcpFlags.Fin));
        h.Ack();
        Assert.Equal(TcpState.FinWait2, h.Conn.State);
        uint firstUnacked = h.PeerNxt;
        var last = TestPackets.Data(3000, 7);
        h.SendData(last.AsSpan(0, 1460));
        h.SendData(last.AsSpan(1460), TcpFlags.Fin);
        Assert.Equal(TcpState.TimeWait, h.Conn.State);
        Assert.Equal(last, h.HostRead());
        h.Take();                                                 // these ACKs never reach the peer

        h.Advance(TimeSpan.FromSeconds(1));
        h.Feed(h.Packet(firstUnacked, h.PeerRcvNxt, TcpFlags.Ack, 511, last.AsSpan(0, 1460))); // go-back-N resend
        var ack = Assert.Single(h.Take());
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.Equal(h.PeerNxt, ack.Ack);                         // everything, FIN included, is acknowledged
        Assert.Equal(TcpState.TimeWait, h.Conn.State);

        h.Feed(h.Packet(h.PeerNxt, h.PeerRcvNxt, TcpFlags.Ack, 511)); // an in-window bare ACK gets no answer (no ACK loop)
        Assert.Empty(h.Take());
    }

    [Fact]
    public void SimultaneousCloseGoesThroughClosing()
    {
        using var h = new ConnHarness();
        h.Establish();
        h.Conn.HostEof(h.Now);
        var fin = Assert.Single(h.Take());
        h.Feed(h.Packet(h.PeerNxt, fin.Seq, TcpFlags.Fin | TcpFlags.Ack, 511)); // the peer's FIN crosses ours
        h.PeerNxt++;
        Assert.Equal(TcpState.Closing, h.Conn.State);
        h.AckUpTo(fin.Seq + 1);
        Assert.Equal(TcpState.TimeWait, h.Conn.State);
    }

    [Fact]
    public void LostFinIsRetransmitted()
    {
        using var h = new ConnHarness();
        h.Establish();
        h.Conn.HostEof(h.Now);
        var fin = Assert.Single(h.Take());
        h.Advance(h.Conn.Rtt.Rto);
        var again = Assert.Single(h.Take());
        Assert.True(again.Has(TcpFlags.Fin));
        Assert.Equal(fin.Seq, again.Seq);
    }

    [Fact]
    public void OutOfOrderFinWaitsForTheMissingData()
    {
        using var h = new ConnHarness();
        h.Establish();
        var data = TestPackets.Data(1000, 5);
        uint s0 = h.PeerNxt;
        h.Feed(h.Packet(s0 + 500, h.PeerRcvNxt, TcpFlags.Ack | TcpFlags.Fin, 511, data.AsSpan(500)));
        Assert.Equal(TcpState.Established, h.Conn.State);
        h.Feed(h.Packet(s0, h.PeerRcvNxt, TcpFlags.Ack, 511, data.AsSpan(0, 500)));
        Assert.Equal(TcpState.CloseWait, h.Conn.State);
        Assert.Equal(s0 + 1001, h.Take()[^1].Ack);
        Assert.Equal(data, h.HostRead());
    }

    [Fact]
    public void FinLostWithTheDataFollowsTheRetransmittedData()
    {
        using var h = new ConnHarness();
        h.Establish();
        var data = TestPackets.Data(3 * 1380, 8);
        h.Conn.WriteSendData(data, h.Now);
        h.Conn.HostEof(h.Now);
        var first = h.Take();
        Assert.True(first[^1].Has(TcpFlags.Fin));
        h.PeerRcvNxt = first[0].Seq;                              // the whole flight was lost
        h.Received.Clear();
        h.Advance(h.Conn.Rtt.Rto);                                // RTO: the first segment again
        Assert.Equal(first[0].Seq, Assert.Single(h.Take()).Seq);
        for (int i = 0; i < 5 && h.Conn.State == TcpState.FinWait1; i++)
        {
            h.Ack();                                              // slow start resends the rest, then the FIN
            h.Take();
        }
        Assert.Equal(data, h.Received.ToArray());
        Assert.Equal(first[^1].Seq + 1, h.PeerRcvNxt);            // the FIN was received once, at its old place
        Assert.Equal(TcpState.FinWait2, h.Conn.State);
    }

    public enum At { SynReceived, Established, CloseWait, LastAck, FinWait1, FinWait2, Closing }

    /// <summary>Brings a connection to <paramref name="at"/>.</summary>
    private static ConnHarness To(At at)
    {
        var h = new ConnHarness();
        if (at == At.SynReceived) { h.Syn(); h.Conn.HostConnected(h.Now); h.PeerRcvNxt = h.Take()[0].Seq + 1; return h; }
        h.Establish();
        switch (at)
        {
            case At.CloseWait: h.SendData(default, TcpFlags.Fin); break;
            case At.LastAck: h.SendData(default, TcpFlags.Fin); h.Conn.HostEof(h.Now); break;
            case At.FinWait1: h.Conn.HostEof(h.Now); break;
            case At.FinWait2: h.Conn.HostEof(h.Now); h.Take(); h.Ack(); break;
            case At.Closing:
                h.Conn.HostEof(h.Now);
                var fin = h.Take()[^1];
                h.Feed(h.Packet(h.PeerNxt, fin.Seq, TcpFlags.Fin | TcpFlags.Ack, 511));
                h.PeerNxt++;
                break;
        }
        h.Take();
        Assert.Equal(at.ToString(), h.Conn.State.ToString());
        return h;
    }

    [Theory]
    [InlineData(At.SynReceived)] [InlineData(At.Established)] [InlineData(At.CloseWait)] [InlineData(At.LastAck)]
    [InlineData(At.FinWait1)] [InlineData(At.FinWait2)] [InlineData(At.Closing)]
    public void ExactRstClosesAndAbortsTheHostInEveryState(At at)
    {
        using var h = To(at);
        h.Feed(h.Packet(h.PeerNxt, 0, TcpFlags.Rst, 0));
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.True(h.Conn.AbortHost);
        Assert.Empty(h.Take());                                   // never answer a RST
        Assert.Equal(1, h.Counters.TcpResets);
        Assert.Equal(0, h.Counters.TcpActive);
    }

    [Theory]
    [InlineData(At.Established)] [InlineData(At.CloseWait)] [InlineData(At.FinWait2)]
    public void InWindowButInexactRstGetsAChallengeAck(At at)
    {
        using var h = To(at);
        h.Feed(h.Packet(h.PeerNxt + 100, 0, TcpFlags.Rst, 0));   // RFC 5961 §3.2 blind-reset defence
        var challenge = Assert.Single(h.Take());
        Assert.Equal(TcpFlags.Ack, challenge.Flags);
        Assert.Equal(h.PeerNxt, challenge.Ack);
        Assert.NotEqual(TcpState.Closed, h.Conn.State);
        h.Feed(h.Packet(h.PeerNxt + 1_000_000, 0, TcpFlags.Rst, 0)); // outside the window: ignored
        Assert.Empty(h.Take());
    }

    [Fact]
    public void RstWhileConnectingCancelsTheConnect()
    {
        using var h = new ConnHarness();
        h.Syn();
        h.Feed(h.Packet(ConnHarness.PeerIss + 1, 0, TcpFlags.Rst, 0));
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.True(h.Conn.AbortHost);
        h.Conn.HostConnected(h.Now);
        Assert.Empty(h.Take());
    }

    [Fact]
    public void RstInTimeWaitEndsIt()
    {
        using var h = To(At.Closing);
        h.Ack();
        Assert.Equal(TcpState.TimeWait, h.Conn.State);
        h.Feed(h.Packet(h.PeerNxt, 0, TcpFlags.Rst, 0));
        Assert.Equal(TcpState.Closed, h.Conn.State);
    }

    [Fact]
    public void HostResetSendsRstToThePeer()
    {
        using var h = new ConnHarness();
        h.Establish();
        h.Conn.HostReset();
        var rst = Assert.Single(h.Take());
        Assert.True(rst.Has(TcpFlags.Rst));
        Assert.Equal(h.PeerNxt, rst.Ack);
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.Equal(1, h.Counters.TcpResets);
    }

    [Fact]
    public void SynOnAnEstablishedFlowGetsAChallengeAck()
    {
        using var h = new ConnHarness();
        h.Establish();
        h.Feed(h.Packet(h.PeerNxt + 5, 0, TcpFlags.Syn, 500, default, 1460));
        Assert.Equal(TcpFlags.Ack, Assert.Single(h.Take()).Flags);
        Assert.Equal(TcpState.Established, h.Conn.State);
    }

    [Fact]
    public void IdleFlowIsResetBothWays()
    {
        using var h = new ConnHarness();
        h.Establish();
        h.Advance(h.Options.TcpIdleTimeout - TimeSpan.FromSeconds(1));
        h.SendData(TestPackets.Data(10, 6));                      // traffic restarts the idle clock
        h.Advance(h.Options.TcpIdleTimeout - TimeSpan.FromSeconds(1));
        Assert.Equal(TcpState.Established, h.Conn.State);
        h.Take();
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.True(h.Conn.AbortHost);
        Assert.True(Assert.Single(h.Take()).Has(TcpFlags.Rst));
    }

    [Fact]
    public void UnansweredRetransmissionsGiveUpWithRst()
    {
        using var h = new ConnHarness(idleMinutes: 30);
        h.Establish();
        h.Conn.WriteSendData(TestPackets.Data(100, 7), h.Now);
        var start = h.Now;
        for (int i = 0; i < 1000 && h.Conn.State != TcpState.Closed; i++) h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.True(h.Now - start < h.Options.TcpIdleTimeout);    // the retry limit, not the idle timer
        Assert.Equal(12, h.Counters.TcpRetransmits);
        Assert.True(h.Conn.AbortHost);
        Assert.Contains(h.Take(), s => s.Has(TcpFlags.Rst));
    }
}
