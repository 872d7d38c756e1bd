using System.Net;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Net;
using static WgEngine.Tests.Egress.EgressPackets;

namespace WgEngine.Tests.Egress;

public class UserspaceEgressDispatchTests
{
    private static readonly IpPrefix[] Gateway = [IpPrefix.Parse("10.8.0.1/24"), IpPrefix.Parse("fd00:8::1/64")];

    /// <summary>The documentation ranges stand in for the internet here; the default refuses them, so they are allowed explicitly.</summary>
    private static readonly EgressOptions DocumentationAllowed = new()
    {
        Allow = [IpPrefix.Parse("192.0.2.0/24"), IpPrefix.Parse("198.51.100.0/24"), IpPrefix.Parse("2001:db8::/32")],
        HostAddresses = () => [],
    };

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
        using var egress = new UserspaceEgress(sink, DocumentationAllowed, gatewayAddresses: Gateway);
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
        var options = new EgressOptions { Allow = [IpPrefix.Parse("192.0.2.0/24")], Deny = [IpPrefix.Parse("8.8.8.0/24")] };
        using var egress = new UserspaceEgress(sink, options, gatewayAddresses: Gateway);
        egress.Deliver(PeerA, Udp("10.8.0.2", "8.8.8.8", 1, 2, new byte[1000]));
        var reply = sink.Next();
        AssertValid(reply);
        Assert.Equal(576, reply.Length);
        Assert.Equal(1, egress.Counters.Denied);
        Assert.True(egress.Policy.IsAllowed(IPAddress.Parse("192.0.2.200")));    // the exception
        Assert.False(egress.Policy.IsAllowed(IPAddress.Parse("198.51.100.1")));  // still a built-in refusal
        Assert.False(egress.Policy.IsAllowed(IPAddress.Parse("8.8.8.9")));       // the deny rule
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
        using var egress = new UserspaceEgress(sink, DocumentationAllowed, gatewayAddresses: Gateway);
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
        var egress = new UserspaceEgress(sink, DocumentationAllowed, (s, o, c) => { givenSink = s; return tcp; }, Gateway);
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
    // The defaults: the internet is reachable, the special-purpose ranges that are not globally reachable are not.
    [InlineData(null, null, false, "8.8.8.8", true)]
    [InlineData(null, null, false, "2606:4700::1111", true)]
    [InlineData(null, null, false, "127.0.0.53", false)]
    [InlineData(null, null, false, "0.1.2.3", false)]
    [InlineData(null, null, false, "255.255.255.255", false)]
    [InlineData(null, null, false, "169.254.169.254", false)]
    [InlineData(null, null, false, "10.1.2.3", false)]
    [InlineData(null, null, false, "172.16.5.5", false)]
    [InlineData(null, null, false, "192.168.1.1", false)]
    [InlineData(null, null, false, "100.64.0.1", false)]
    [InlineData(null, null, false, "198.18.0.1", false)]
    [InlineData(null, null, false, "192.0.2.1", false)]
    [InlineData(null, null, false, "192.0.0.9", true)]            // a globally reachable entry inside 192.0.0.0/24
    [InlineData(null, null, false, "fd00::1", false)]
    [InlineData(null, null, false, "fc00::1", false)]
    [InlineData(null, null, false, "2001:db8::1", false)]
    [InlineData(null, null, false, "2001:3::1", true)]            // AMT, globally reachable inside 2001::/23
    [InlineData(null, null, false, "::ffff:127.0.0.1", false)]
    [InlineData(null, null, false, "::ffff:10.0.0.1", false)]
    [InlineData(null, null, false, "fec0::1", false)]
    [InlineData(null, null, false, "::1", false)]
    // Exceptions open what they name, at least as specific as the built-in range; "everything" opens nothing built in.
    [InlineData("0.0.0.0/0,::/0", null, false, "127.0.0.1", false)]
    [InlineData("0.0.0.0/0,::/0", null, false, "169.254.169.254", false)]
    [InlineData("0.0.0.0/0,::/0", null, false, "::1", false)]
    [InlineData("0.0.0.0/0,::/0", null, false, "10.0.0.1", false)]
    [InlineData("0.0.0.0/0,::/0", null, false, "8.8.8.8", true)]
    [InlineData("10.0.0.0/8,2001:db8::/32", null, false, "10.200.0.1", true)]
    [InlineData("10.0.0.0/8,2001:db8::/32", null, false, "11.0.0.1", true)]
    [InlineData("10.0.0.0/8,2001:db8::/32", null, false, "2001:db8:ffff::1", true)]
    [InlineData("10.0.0.0/8,2001:db8::/32", null, false, "172.16.0.1", false)]
    [InlineData("10.1.2.3/9", null, false, "10.127.0.1", true)]
    [InlineData("10.1.2.3/9", null, false, "10.128.0.1", false)]
    [InlineData("127.0.0.1/32", null, false, "::ffff:127.0.0.1", true)]
    [InlineData("127.0.0.1/32", null, false, "127.0.0.2", false)]
    // Deny rules add to the defaults; the most specific entry wins, deny beats allow on the same prefix.
    [InlineData(null, "8.8.8.0/24", false, "8.8.8.8", false)]
    [InlineData(null, "8.8.8.0/24", false, "8.8.4.4", true)]
    [InlineData("10.0.0.0/8", "10.5.0.0/16", false, "10.5.0.1", false)]
    [InlineData("10.0.0.0/8", "10.5.0.0/16", false, "10.6.0.1", true)]
    [InlineData("10.5.0.0/16", "10.5.0.0/16", false, "10.5.0.1", false)]
    [InlineData("203.0.113.0/24", "0.0.0.0/0", false, "203.0.113.7", true)]   // an allow-list-only setup
    [InlineData("203.0.113.0/24", "0.0.0.0/0", false, "8.8.8.8", false)]
    // Only the loud switch drops the built-ins.
    [InlineData(null, null, true, "127.0.0.1", true)]
    [InlineData(null, null, true, "10.0.0.1", true)]
    [InlineData(null, "127.0.0.0/8", true, "127.0.0.1", false)]
    public void The_raw_byte_policy_agrees_with_the_address_policy(string? allow, string? deny, bool unprotected, string address, bool expected)
    {
        using var policy = new EgressPolicy(new EgressRules(Prefixes(allow), Prefixes(deny), unprotected), () => []);
        var a = IPAddress.Parse(address);
        Assert.Equal(expected, policy.IsAllowed(a));
        Assert.Equal(expected, policy.IsAllowed(a.GetAddressBytes()));
    }

    [Fact]
    public void The_hosts_own_addresses_are_refused_and_open_only_to_an_exception_naming_each()
    {
        IPAddress[] host = [IPAddress.Parse("93.184.216.34"), IPAddress.Parse("2606:2800:220:1::1")];
        using var policy = new EgressPolicy(EgressRules.Default, () => host);
        Assert.False(policy.IsAllowed(host[0]));
        Assert.False(policy.IsAllowed(host[1]));
        Assert.True(policy.IsAllowed(IPAddress.Parse("93.184.216.35")));            // its neighbour is just the internet

        policy.Update(new EgressRules([IpPrefix.Parse("93.184.216.0/24")], []));    // the host's LAN allowed: the host itself stays off
        Assert.False(policy.IsAllowed(host[0]));
        policy.Update(new EgressRules([IpPrefix.Parse("93.184.216.34/32")], []));
        Assert.True(policy.IsAllowed(host[0]));
        Assert.False(policy.IsAllowed(host[1]));

        // The real interfaces: this machine's loopback and every address it has are refused by default.
        using var real = new EgressPolicy(EgressRules.Default);
        foreach (var a in System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                     .SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(u => u.Address))
            Assert.False(real.IsAllowed(a), $"host address {a}");
    }

    [Fact]
    public void Rules_change_at_runtime_for_the_next_packet()
    {
        var sink = new CaptureSink();
        var tcp = new RecordingTcp();
        using var egress = new UserspaceEgress(sink, new EgressOptions { HostAddresses = () => [] }, (_, _, _) => tcp, Gateway);
        var syn = Ip("10.8.0.2", "10.20.0.5", 6, new byte[20]);
        egress.Deliver(PeerA, syn);
        Assert.Equal(1, egress.Counters.Denied);                 // RFC 1918: refused by default
        Assert.Empty(tcp.Seen);

        egress.Policy.Update(new EgressRules([IpPrefix.Parse("10.20.0.0/16")], []));
        egress.Deliver(PeerA, syn);
        Assert.Single(tcp.Seen);

        egress.Policy.Update(new EgressRules([IpPrefix.Parse("10.20.0.0/16")], [IpPrefix.Parse("10.20.0.5/32")]));
        egress.Deliver(PeerA, syn);
        Assert.Single(tcp.Seen);
        Assert.Equal(2, egress.Counters.Denied);
    }

    [Theory]
    [InlineData("10.8.0.2", "10.8.0.1")]
    [InlineData("fd00:8::2", "fd00:8::1")]
    public void The_gateways_own_tunnel_address_is_never_dialled_from_the_host_even_unprotected(string src, string gateway)
    {
        var sink = new CaptureSink();
        var tcp = new RecordingTcp();
        using var egress = new UserspaceEgress(sink, new EgressOptions { Unprotected = true, HostAddresses = () => [] }, (_, _, _) => tcp, Gateway);
        egress.Deliver(PeerA, Ip(src, gateway, 6, new byte[20]));   // a TCP SYN-sized segment to the gateway itself
        Assert.Empty(tcp.Seen);
        Assert.Equal(1, egress.Counters.Denied);
        var reply = sink.Next();
        AssertValid(reply);
        Assert.Equal(IPAddress.Parse(gateway), Source(reply));
    }

    [Fact]
    public void Refusing_loopback_without_a_gateway_address_of_the_family_never_answers_from_loopback()
    {
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, gatewayAddresses: [IpPrefix.Parse("10.8.0.1/24")]);   // no IPv6 address
        egress.Deliver(PeerA, Ip("fd00:8::2", "::1", 6, new byte[20]));
        var reply = sink.Next();
        AssertValid(reply);
        Assert.Equal(IPAddress.Parse("fe80::1"), Source(reply));   // a source the client accepts (::1 is dropped on the wire)
        Assert.Equal((1, 1), (Payload(reply)[0], Payload(reply)[1]));
        Assert.Equal(1, egress.Counters.Denied);
    }

    private static IpPrefix[] Prefixes(string? list) => list is null ? [] : [.. list.Split(',').Select(IpPrefix.Parse)];
}
