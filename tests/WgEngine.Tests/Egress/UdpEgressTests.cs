using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Egress;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;
using static WgEngine.Tests.Egress.EgressPackets;

namespace WgEngine.Tests.Egress;

public class UdpEgressTests
{
    private static EgressOptions LoopbackAllowed(TimeProvider? time = null, int perPeer = 512, int total = 16384) => new()
    {
        Allow = [IpPrefix.Parse("127.0.0.1/32"), IpPrefix.Parse("::1/128")],
        TimeProvider = time ?? TimeProvider.System,
        MaxUdpFlowsPerPeer = perPeer,
        MaxUdpFlows = total,
    };

    private static byte[] Data(int n, byte seed = 1) => Enumerable.Range(0, n).Select(i => (byte)(i * 31 + seed)).ToArray();

    [Fact]
    public void A_datagram_is_echoed_back_as_a_valid_udp_packet_from_the_server_to_the_peer_over_IPv4() =>
        EchoedBackFromTheServerToThePeer("10.8.0.2", "127.0.0.1");

    [HostFact(HostNeeds.Ipv6Loopback)]
    public void A_datagram_is_echoed_back_as_a_valid_udp_packet_from_the_server_to_the_peer_over_IPv6() =>
        EchoedBackFromTheServerToThePeer("fd00:8::2", "::1");

    private static void EchoedBackFromTheServerToThePeer(string peerAddress, string serverAddress)
    {
        using var server = new UdpEchoServer(IPAddress.Parse(serverAddress));
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, LoopbackAllowed());
        var data = Data(300);
        egress.Deliver(PeerA, Udp(peerAddress, serverAddress, 5353, server.Port, data));

        var reply = sink.Next();
        AssertValid(reply);
        Assert.Equal(17, Protocol(reply));
        Assert.Equal(IPAddress.Parse(serverAddress), Source(reply));
        Assert.Equal(IPAddress.Parse(peerAddress), Destination(reply));
        var udp = Payload(reply);
        Assert.Equal(server.Port, U16(udp, 0));
        Assert.Equal(5353, U16(udp, 2));
        Assert.Equal(data, udp.Slice(8).ToArray());
        Assert.Equal(1, egress.Counters.UdpFlowsOpened);
        Assert.Equal(1, egress.Counters.UdpFlowsActive);
    }

    [Fact]
    public void One_mapping_per_source_port_serves_every_destination_and_replies_name_their_sender()
    {
        using var one = new UdpEchoServer(IPAddress.Loopback);
        using var two = new UdpEchoServer(IPAddress.Loopback);
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, LoopbackAllowed());

        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 1111, one.Port, [1]));
        var r1 = sink.Next();
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 1111, two.Port, [2]));
        var r2 = sink.Next();
        Assert.Equal(one.Port, U16(Payload(r1), 0));
        Assert.Equal(two.Port, U16(Payload(r2), 0));
        Assert.Equal(1111, U16(Payload(r2), 2));
        Assert.True(one.Senders.TryPeek(out var via1));
        Assert.True(two.Senders.TryPeek(out var via2));
        Assert.Equal(via1.Port, via2.Port);          // endpoint-independent: same host port for both
        Assert.Equal(1, egress.Counters.UdpFlowsOpened);

        // Another source port, and the same port from another peer, get mappings of their own.
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 2222, one.Port, [3]));
        egress.Deliver(PeerB, Udp("10.8.0.2", "127.0.0.1", 1111, one.Port, [4]));
        sink.Next(); sink.Next();
        Assert.Equal(3, one.Senders.Select(e => e.Port).Distinct().Count());
        Assert.Equal(3, egress.Counters.UdpFlowsOpened);
        Assert.Equal(3, egress.UdpFlowCount);
    }

    [Fact]
    public void Idle_mappings_close_after_the_timeout_on_the_injected_clock()
    {
        var clock = new FakeTimeProvider();
        using var server = new UdpEchoServer(IPAddress.Loopback);
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, new EgressOptions
        {
            Allow = LoopbackAllowed().Allow, TimeProvider = clock, UdpIdleTimeout = TimeSpan.FromSeconds(60),
        });
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 1000, server.Port, [1]));
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 2000, server.Port, [1]));
        sink.Next(); sink.Next();
        Assert.Equal(2, egress.Counters.UdpFlowsActive);

        clock.Advance(TimeSpan.FromSeconds(45));
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 2000, server.Port, [2]));   // keeps its mapping alive
        sink.Next();
        clock.Advance(TimeSpan.FromSeconds(30));   // 75 s for the first, 30 s for the second; the sweep timer fires
        TestSupport.TestNet.WaitFor(() => egress.Counters.UdpFlowsActive == 1, "the idle mapping to close");
        Assert.Equal(1, egress.UdpFlowCount);

        clock.Advance(TimeSpan.FromSeconds(60));
        TestSupport.TestNet.WaitFor(() => egress.Counters.UdpFlowsActive == 0, "the second mapping to close");
        Assert.Equal(2, egress.Counters.UdpFlowsOpened);

        // A new datagram opens a fresh mapping that works.
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 1000, server.Port, [3]));
        Assert.Equal([3], Payload(sink.Next()).Slice(8).ToArray());
        Assert.Equal(3, egress.Counters.UdpFlowsOpened);
    }

    [Fact]
    public void Per_peer_and_total_limits_refuse_new_mappings_and_count_them()
    {
        using var server = new UdpEchoServer(IPAddress.Loopback);
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, LoopbackAllowed(perPeer: 2, total: 3));
        for (ushort port = 1; port <= 3; port++)
            egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", port, server.Port, [1]));
        Assert.Equal(2, egress.Counters.UdpFlowsOpened);
        Assert.Equal(1, egress.Counters.UdpLimited);
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 1, server.Port, [1]));     // existing mapping still works
        Assert.Equal(1, egress.Counters.UdpLimited);

        egress.Deliver(PeerB, Udp("10.8.0.3", "127.0.0.1", 1, server.Port, [1]));
        egress.Deliver(PeerB, Udp("10.8.0.3", "127.0.0.1", 2, server.Port, [1]));     // total of 3 reached
        Assert.Equal(3, egress.Counters.UdpFlowsOpened);
        Assert.Equal(2, egress.Counters.UdpLimited);
        for (int i = 0; i < 4; i++) sink.Next();
        Assert.True(sink.Nothing());
    }

    [Fact]
    public void Datagrams_up_to_the_tunnel_mtu_pass_and_larger_replies_are_dropped()
    {
        using var server = new UdpEchoServer(IPAddress.Loopback);
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, LoopbackAllowed(), mtu: 1420);
        var biggest = Data(1420 - 28, 7);
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 4000, server.Port, biggest));
        var reply = sink.Next();
        AssertValid(reply);
        Assert.Equal(1420, reply.Length);
        Assert.Equal(biggest, Payload(reply).Slice(8).ToArray());

        // The peer may send more than the MTU (its own MTU is its business); the echo is too big to go back.
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 4000, server.Port, Data(1420 - 27)));
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 4000, server.Port, [9]));   // the mapping keeps working after it
        Assert.Equal([9], Payload(sink.Next()).Slice(8).ToArray());
        Assert.True(sink.Nothing(50));
    }

    [Fact]
    public void Replies_from_senders_outside_the_allow_list_are_not_let_in()
    {
        using var allowed = new UdpEchoServer(IPAddress.Loopback);
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, LoopbackAllowed());
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 6000, allowed.Port, [1]));
        sink.Next();
        Assert.True(allowed.Senders.TryPeek(out var mapped));

        // 127.0.0.2 is loopback too but not in the allow list: its datagram to the mapped port is dropped.
        using var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        stranger.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        stranger.SendTo([0xEE], new IPEndPoint(IPAddress.Loopback, mapped!.Port));
        Assert.True(sink.Nothing(300));
        egress.Deliver(PeerA, Udp("10.8.0.2", "127.0.0.1", 6000, allowed.Port, [2]));
        Assert.Equal([2], Payload(sink.Next()).Slice(8).ToArray());
    }

    [Fact]
    public void The_per_packet_paths_do_not_allocate()
    {
        using var server = new UdpEchoServer(IPAddress.Loopback);
        using var egress = new UserspaceEgress(new NullSink(), LoopbackAllowed(), gatewayAddresses: [IpPrefix.Parse("10.8.0.1/24")]);
        var toServer = Udp("10.8.0.2", "127.0.0.1", 7000, server.Port, new byte[64]);
        var denied = Udp("10.8.0.2", "127.0.0.2", 7000, 9, new byte[64]);
        for (int i = 0; i < 100; i++) { egress.Deliver(PeerA, toServer); egress.Deliver(PeerA, denied); }   // warm up, open the mapping

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) { egress.Deliver(PeerA, toServer); egress.Deliver(PeerA, denied); }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(1, egress.Counters.UdpFlowsOpened);
        Assert.Equal(1100, egress.Counters.Denied);
        Assert.Equal(0, allocated);
    }

    private sealed class NullSink : IPacketSink
    {
        public bool SendPacket(ReadOnlySpan<byte> ipPacket) => true;
    }
}
