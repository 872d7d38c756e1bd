using WgEngine.Egress.Tcp;
using WgEngine.Tests.PacketPlane;

namespace WgEngine.Tests.Egress.Tcp;

public class TcpHandshakeTests
{
    [Theory]
    [InlineData(false, 1380)]
    [InlineData(true, 1360)]
    public void SynAckOnlyAfterHostConnectWithOptions(bool v6, int tunnelMss)
    {
        using var h = new ConnHarness(v6, buffer: 256 * 1024);
        h.Syn(mss: 1460, wscale: 7, sackOk: true);
        Assert.Empty(h.Take());                                   // nothing before the host side answers
        h.Feed(h.Packet(ConnHarness.PeerIss, 0, TcpFlags.Syn, 65535, default, 1460, 7, true)); // retransmitted SYN
        Assert.Empty(h.Take());                                   // absorbed while connecting
        Assert.Equal(TcpState.Connecting, h.Conn.State);

        h.Conn.HostConnected(h.Now);
        var synAck = Assert.Single(h.Take());
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(ConnHarness.OurIss, synAck.Seq);
        Assert.Equal(ConnHarness.PeerIss + 1, synAck.Ack);
        Assert.Equal(tunnelMss, synAck.Mss);
        Assert.Equal(3, synAck.WindowScale);                      // 262144 >> 3 is the first shift that fits 16 bits
        Assert.True(synAck.SackPermitted);
        Assert.Equal(65535, synAck.Window);                       // a SYN's window is unscaled
        Assert.Equal(tunnelMss, h.Conn.Mss);                      // our segments clamped to the tunnel

        h.PeerRcvNxt = synAck.Seq + 1;
        h.Ack();
        Assert.Equal(TcpState.Established, h.Conn.State);
        Assert.Equal(1, h.Counters.TcpOpened);
        Assert.Equal(1, h.Counters.TcpActive);
    }

    [Fact]
    public void PeerWithoutOptionsGetsNoneAndDefaultMss()
    {
        using var h = new ConnHarness();
        h.Syn(mss: 0, wscale: -1, sackOk: false);
        h.Conn.HostConnected(h.Now);
        var synAck = Assert.Single(h.Take());
        Assert.Equal(-1, synAck.WindowScale);
        Assert.False(synAck.SackPermitted);
        Assert.Equal(536, h.Conn.Mss); // RFC 9293 default when the SYN names no MSS
    }

    [Fact]
    public void SmallerPeerMssIsHonoured()
    {
        using var h = new ConnHarness();
        h.Establish(mss: 600);
        Assert.True(h.Conn.WriteSendData(TestPackets.Data(5000, 1), h.Now) == 5000);
        Assert.All(h.Take(), s => Assert.True(s.Payload.Length <= 600));
    }

    [Fact]
    public void DuplicateSynAfterSynAckResendsIt()
    {
        using var h = new ConnHarness();
        h.Syn();
        h.Conn.HostConnected(h.Now);
        var first = Assert.Single(h.Take());
        h.Feed(h.Packet(ConnHarness.PeerIss, 0, TcpFlags.Syn, 65535, default, 1460, 7, true));
        var again = Assert.Single(h.Take());
        Assert.Equal(first.Seq, again.Seq);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, again.Flags);
    }

    [Fact]
    public void SynAckRetransmittedWithBackoffThenGivesUp()
    {
        using var h = new ConnHarness();
        h.Syn();
        h.Conn.HostConnected(h.Now);
        h.Take();
        h.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Empty(h.Take());
        h.Advance(TimeSpan.FromMilliseconds(1));                 // initial RTO 1 s (RFC 6298)
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, Assert.Single(h.Take()).Flags);
        h.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Empty(h.Take());
        h.Advance(TimeSpan.FromMilliseconds(1));                 // doubled
        Assert.Single(h.Take());
        for (int i = 0; i < 10 && h.Conn.State != TcpState.Closed; i++) h.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.True(h.Conn.AbortHost);
        Assert.Contains(h.Take(), s => s.Has(TcpFlags.Rst));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RefusedConnectAnswersRst(bool v6)
    {
        using var h = new ConnHarness(v6);
        h.Syn();
        h.Conn.HostConnectFailed(HostConnectError.Refused);
        var rst = Assert.Single(h.Take());
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(ConnHarness.PeerIss + 1, rst.Ack);           // RFC 9293: RST for a SYN acknowledges it
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.Equal(1, h.Counters.TcpRefused);
        Assert.Equal(0, h.Counters.TcpOpened);
    }

    [Fact]
    public void UnreachableConnectAnswersIcmpV4HostUnreachable()
    {
        using var h = new ConnHarness();
        h.Syn();
        h.Conn.HostConnectFailed(HostConnectError.Unreachable);
        var p = Assert.Single(h.Out.Take());
        Assert.Equal(1, p[9]);                                    // ICMP
        Assert.True(TestPackets.V4HeaderValid(p));
        Assert.Equal(h.Remote, p.AsSpan(12, 4).ToArray());        // in the name of the destination
        Assert.Equal(h.Peer, p.AsSpan(16, 4).ToArray());
        Assert.Equal(3, p[20]);                                   // destination unreachable
        Assert.Equal(1, p[21]);                                   // host unreachable
        Assert.True(TestPackets.V4IcmpValid(p, p.Length));
        Assert.Equal(0x45, p[28]);                                // quotes the SYN's IP header
        Assert.Equal(ConnHarness.PeerPort, (ushort)((p[48] << 8) | p[49]));
        Assert.Equal(1, h.Counters.TcpUnreachable);
    }

    [Fact]
    public void UnreachableConnectAnswersIcmpV6AddressUnreachable()
    {
        using var h = new ConnHarness(v6: true);
        h.Syn();
        h.Conn.HostConnectFailed(HostConnectError.Unreachable);
        var p = Assert.Single(h.Out.Take());
        Assert.Equal(58, p[6]);
        Assert.Equal(1, p[40]);
        Assert.Equal(3, p[41]);
        Assert.Equal(0xFFFF, TestPackets.ReferenceSum(TestPackets.WithPseudoHeaderV6(p.AsSpan(8, 16), p.AsSpan(24, 16), 58, p.AsSpan(40))));
        Assert.Equal(0x60, p[48] & 0xF0);
    }

    [Fact]
    public void ConnectTimeoutResetsThePeerAndAbortsTheConnect()
    {
        using var h = new ConnHarness();
        h.Syn();
        h.Advance(h.Options.TcpConnectTimeout - TimeSpan.FromMilliseconds(1));
        Assert.Empty(h.Take());
        Assert.Equal(TcpState.Connecting, h.Conn.State);
        h.Advance(TimeSpan.FromMilliseconds(1));
        var rst = Assert.Single(h.Take());
        Assert.True(rst.Has(TcpFlags.Rst));
        Assert.Equal(TcpState.Closed, h.Conn.State);
        Assert.True(h.Conn.AbortHost);
        Assert.Equal(1, h.Counters.TcpUnreachable);
        h.Conn.HostConnected(h.Now);                              // a late connect changes nothing
        Assert.Empty(h.Take());
    }

    [Fact]
    public void WrongAckInSynReceivedGetsRst()
    {
        using var h = new ConnHarness();
        h.Syn();
        h.Conn.HostConnected(h.Now);
        h.Take();
        h.Feed(h.Packet(ConnHarness.PeerIss + 1, 12345, TcpFlags.Ack, 500));
        var rst = Assert.Single(h.Take());
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(12345u, rst.Seq);
        Assert.Equal(TcpState.SynReceived, h.Conn.State);
    }
}
