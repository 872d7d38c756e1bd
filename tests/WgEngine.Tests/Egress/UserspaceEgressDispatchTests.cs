using System.Net;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Net;
using static WgEngine.Tests.Egress.EgressPackets;

namespace WgEngine.Tests.Egress;

public class UserspaceEgressDispatchTests
{
    private static readonly IpPrefix[] Gateway = [IpPrefix.Parse("10.8.0.1/24"), IpPrefix.Parse("fd00:8::1/64")];

    private sealed class RecordingTcp : IEgressProtocol
    {
        public readonly List<(WgKey Peer, byte[] Packet)> Seen = new();
        public int Disposed;
        public void OnPacket(WgKey fromPeer, ReadOnlySpan<byte> ipPacket) => Seen.Add((fromPeer, ipPacket.ToArray()));
        public void Dispose() => Disposed++;
    }

    [Fact]
    public void Malformed_packets_are_counted_and_dropped_without_an_answer()
    {
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, gatewayAddresses: Gateway);
        egress.Deliver(PeerA, [0x45, 0, 0]);                              // truncated header
        egress.Deliver(PeerA, new byte[40]);                              // version 0
        var badHeader = Udp("10.8.0.2", "192.0.2.7", 1000, 53, [1, 2, 3]);
        badHeader[10] ^= 0xFF;                                            // IPv4 header checksum broken
        egress.Deliver(PeerA, badHeader);
        var badUdp = Udp("10.8.0.2", "192.0.2.7", 1000, 53, [1, 2, 3]);
        badUdp[^1] ^= 0x55;                                               // data changed after the UDP checksum
        egress.Deliver(PeerA, badUdp);
        var v6NoChecksum = Udp("fd00:8::2", "2001:db8::7", 1000, 53, [1, 2, 3]);
        v6NoChecksum[46] = 0; v6NoChecksum[47] = 0;                       // UDP checksum 0 is invalid in IPv6
        egress.Deliver(PeerA, v6NoChecksum);

        Assert.Equal(5, egress.Counters.Malformed);
        Assert.Equal(0, egress.Counters.UdpFlowsOpened);
        Assert.True(sink.Nothing(50));
    }

    [Theory]
    [InlineData("10.8.0.2", "127.0.0.1", "10.8.0.1")]          // default policy: the host's loopback
    [InlineData("10.8.0.2", "169.254.169.254", "10.8.0.1")]    // cloud metadata (link-local)
    [InlineData("fd00:8::2", "::1", "fd00:8::1")]
    [InlineData("fd00:8::2", "fe80::1", "fd00:8::1")]
    public void Denied_destinations_get_an_administratively_prohibited_error_with_valid_checksums(string src, string dst, string gateway)
    {
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, gatewayAddresses: Gateway);
        var original = Udp(src, dst, 40000, 8080, new byte[100]);
        egress.Deliver(PeerA, original);

        Assert.Equal(1, egress.Counters.Denied);
        Assert.Equal(0, egress.Counters.UdpFlowsOpened);
        var reply = sink.Next();
        AssertValid(reply);
        Assert.Equal(IPAddress.Parse(gateway), Source(reply));
        Assert.Equal(IPAddress.Parse(src), Destination(reply));
        var icmp = Payload(reply);
        if (IsV4(reply))
        {
            Assert.Equal(1, Protocol(reply));
            Assert.Equal((3, 13), (icmp[0], icmp[1]));
        }
        else
        {
            Assert.Equal(58, Protocol(reply));
            Assert.Equal((1, 1), (icmp[0], icmp[1]));
        }
        // The quoted original lets the client's stack find the socket: the whole 128/148-byte packet fits.
        Assert.Equal(original, icmp.Slice(8).ToArray());
    }

    [Fact]
    public void An_explicit_allow_list_is_enforced_and_large_originals_are_quoted_within_576_bytes()
    {
        var sink = new CaptureSink();
        var options = new EgressOptions { Allow = [IpPrefix.Parse("192.0.2.0/24")] };
        using var egress = new UserspaceEgress(sink, options, gatewayAddresses: Gateway);
        egress.Deliver(PeerA, Udp("10.8.0.2", "198.51.100.9", 1, 2, new byte[1000]));
        var reply = sink.Next();
        AssertValid(reply);
        Assert.Equal(576, reply.Length);
        Assert.Equal(1, egress.Counters.Denied);
        Assert.True(egress.Policy.IsAllowed(IPAddress.Parse("192.0.2.200")));
        Assert.False(egress.Policy.IsAllowed(IPAddress.Parse("192.0.3.1")));
    }

    [Fact]
    public void Icmp_errors_and_multicast_are_never_answered()
    {
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, gatewayAddresses: Gateway);
        var icmpError = Ip("10.8.0.2", "127.0.0.1", 1, [3, 1, 0, 0, 0, 0, 0, 0]);   // a destination-unreachable itself
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(icmpError.AsSpan(22), TestSupport.Packets.Checksum(icmpError.AsSpan(20)));
        egress.Deliver(PeerA, icmpError);
        egress.Deliver(PeerA, Udp("10.8.0.2", "239.1.2.3", 1, 2, [1]));
        egress.Deliver(PeerA, Udp("fd00:8::2", "ff02::1", 1, 2, [1]));
        Assert.Equal(3, egress.Counters.Denied);
        Assert.True(sink.Nothing());
    }

    [Fact]
    public void Unsupported_protocols_are_counted_and_TCP_without_a_handler_too()
    {
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, gatewayAddresses: Gateway);
        egress.Deliver(PeerA, Ip("10.8.0.2", "192.0.2.7", 47, new byte[8]));    // GRE
        egress.Deliver(PeerA, Ip("10.8.0.2", "192.0.2.7", 6, new byte[20]));    // TCP, no handler plugged in
        egress.Deliver(PeerA, Ip("fd00:8::2", "2001:db8::7", 44, new byte[16])); // IPv6 fragment header
        var timestamp = Ip("10.8.0.2", "192.0.2.7", 1, new byte[20]);
        timestamp[20] = 13;                                                      // ICMP timestamp request: not echo
        egress.Deliver(PeerA, timestamp);
        Assert.Equal(4, egress.Counters.Unsupported);
        Assert.False(egress.HandlesTcp);
        Assert.True(sink.Nothing(50));
    }

    [Fact]
    public void Tcp_goes_to_the_plugged_in_handler_with_the_padding_cut_off()
    {
        var sink = new CaptureSink();
        var tcp = new RecordingTcp();
        IPacketSink? givenSink = null;
        var egress = new UserspaceEgress(sink, new EgressOptions(), (s, o, c) => { givenSink = s; return tcp; }, Gateway);
        var packet = Ip("10.8.0.2", "192.0.2.7", 6, new byte[20]);
        var padded = packet.Concat(new byte[12]).ToArray();   // WireGuard pads plaintext to 16 bytes
        egress.Deliver(PeerB, padded);
        egress.Deliver(PeerB, Ip("10.8.0.2", "127.0.0.1", 6, new byte[20]));   // denied before TCP sees it

        Assert.True(egress.HandlesTcp);
        Assert.Same(sink, givenSink);
        var (peer, seen) = Assert.Single(tcp.Seen);
        Assert.Equal(PeerB, peer);
        Assert.Equal(packet, seen);
        Assert.Equal(1, egress.Counters.Denied);
        egress.Dispose();
        egress.Dispose();   // a backend's Stop and then Dispose
        Assert.Equal(1, tcp.Disposed);
    }

    [Theory]
    [InlineData(null, "8.8.8.8", true)]
    [InlineData(null, "127.0.0.53", false)]
    [InlineData(null, "0.1.2.3", false)]
    [InlineData(null, "255.255.255.255", false)]
    [InlineData(null, "2001:db8::1", true)]
    [InlineData(null, "::ffff:127.0.0.1", false)]
    [InlineData(null, "fec0::1", false)]
    [InlineData("10.0.0.0/8,2001:db8::/32", "10.200.0.1", true)]
    [InlineData("10.0.0.0/8,2001:db8::/32", "11.0.0.1", false)]
    [InlineData("10.0.0.0/8,2001:db8::/32", "2001:db8:ffff::1", true)]
    [InlineData("10.0.0.0/8,2001:db8::/32", "2001:db9::1", false)]
    [InlineData("10.1.2.3/9", "10.127.0.1", true)]
    [InlineData("10.1.2.3/9", "10.128.0.1", false)]
    [InlineData("127.0.0.1/32", "::ffff:127.0.0.1", true)]
    public void The_raw_byte_policy_agrees_with_the_address_policy(string? allow, string address, bool expected)
    {
        var policy = new EgressPolicy(allow?.Split(',').Select(IpPrefix.Parse).ToArray());
        var a = IPAddress.Parse(address);
        Assert.Equal(expected, policy.IsAllowed(a));
        Assert.Equal(expected, policy.IsAllowed(a.GetAddressBytes()));
    }
}
