using WgEngine.Egress.Tcp;
using WgEngine.Tests.PacketPlane;

namespace WgEngine.Tests.Egress.Tcp;

/// <summary>The per-segment path of a warm connection allocates nothing: parse, accept, ACK, send, retransmit.</summary>
public class TcpAllocationTests
{
    private sealed class NullOutput : ITcpOutput
    {
        public long Count;
        public void Emit(ReadOnlySpan<byte> ipPacket) => Count++;
    }

    [Fact]
    public void SteadyStateSegmentsAllocateNothing()
    {
        using var h = new ConnHarness();                             // packet builder, options, clock
        var output = new NullOutput();
        var syn = h.Packet(ConnHarness.PeerIss, 0, TcpFlags.Syn, 65535, default, 1460, 7, true);
        Assert.True(TcpSegment.TryParse(syn, out var s));
        using var conn = new TcpConnection(output, h.Options, h.Counters, s, 1, h.Now);
        conn.HostConnected(h.Now);
        uint ours = 2, peer = ConnHarness.PeerIss + 1;
        Assert.True(TcpSegment.TryParse(h.Packet(peer, ours, TcpFlags.Ack, 8192), out s));
        conn.OnSegment(s, h.Now);
        Assert.Equal(TcpState.Established, conn.State);

        const int rounds = 2000;
        var payload = TestPackets.Data(1380, 1);
        var data = new byte[rounds][];
        for (int i = 0; i < rounds; i++) data[i] = h.Packet(peer + (uint)(i * 1380), ours, TcpFlags.Ack, 8192, payload);
        var hostBytes = TestPackets.Data(1000, 2);
        var acks = new byte[rounds][];
        for (int i = 0; i < rounds; i++) acks[i] = h.Packet(peer + (uint)((i + 1) * 1380), ours + (uint)((i + 1) * 1000), TcpFlags.Ack, 8192);

        void Round(int i)
        {
            if (!TcpSegment.TryParse(data[i], out var seg)) throw new InvalidOperationException("data segment did not parse");
            conn.OnSegment(seg, h.Now);                              // data in, delayed/immediate ACK out
            var m = conn.ReceivedReadable;
            conn.ConsumeReceived(m.Length, h.Now);                   // host took it (window update path)
            conn.WriteSendData(hostBytes, h.Now);                    // host data out
            if (!TcpSegment.TryParse(acks[i], out seg)) throw new InvalidOperationException("ACK segment did not parse");
            conn.OnSegment(seg, h.Now);                              // peer ACKs it
            conn.OnTimer(h.Now);
        }
        for (int i = 0; i < 100; i++) Round(i);                      // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 100; i < rounds; i++) Round(i);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.True(output.Count >= 2 * (rounds - 100));             // it really emitted segments
        Assert.Equal(TcpState.Established, conn.State);
    }
}
