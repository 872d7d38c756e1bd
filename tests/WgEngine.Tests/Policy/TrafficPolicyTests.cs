using System.Buffers.Binary;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Policy;
using static WgEngine.Tests.Egress.EgressPackets;

namespace WgEngine.Tests.Policy;

public class TrafficPolicyTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    internal static byte[] Tcp(string src, string dst, ushort sp, ushort dp)
    {
        var l4 = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(l4, sp);
        BinaryPrimitives.WriteUInt16BigEndian(l4.AsSpan(2), dp);
        return Ip(src, dst, 6, l4);
    }

    private static IReadOnlyList<AclRule> Rules(params string[] text) => [.. text.SelectMany(AclRule.Parse)];

    [Fact]
    public void Without_isolation_or_rules_everything_passes_and_nothing_is_tracked()
    {
        var policy = new TrafficPolicy(_clock);
        Assert.True(policy.Permits(null, Tcp("10.8.0.2", "10.8.0.3", 1000, 22), toPeer: true));
        Assert.True(policy.Permits(null, Tcp("10.8.0.2", "8.8.8.8", 1000, 53), toPeer: false));
        Assert.Null(policy.Compile([], []));
        Assert.Equal(0, policy.Denied);
    }

    [Fact]
    public void Isolation_refuses_peer_to_peer_but_not_the_egress_and_a_rule_of_the_sender_opens_a_peer()
    {
        var policy = new TrafficPolicy(_clock, peerIsolation: true);
        Assert.False(policy.Permits(null, Tcp("10.8.0.2", "10.8.0.3", 1000, 22), toPeer: true));
        Assert.True(policy.Permits(null, Tcp("10.8.0.2", "8.8.8.8", 1000, 443), toPeer: false));
        var acl = policy.Compile(Rules("allow 10.8.0.3/32 tcp 22"), []);
        policy.Replaced(null, acl);
        Assert.True(policy.Permits(acl, Tcp("10.8.0.2", "10.8.0.3", 1000, 22), toPeer: true));
        Assert.False(policy.Permits(acl, Tcp("10.8.0.2", "10.8.0.3", 1000, 80), toPeer: true));
        Assert.Equal(2, policy.Denied);
        policy.PeerIsolation = false;
        Assert.True(policy.Permits(null, Tcp("10.8.0.2", "10.8.0.3", 1000, 80), toPeer: true));
    }

    [Fact]
    public void Replies_of_an_allowed_flow_pass_where_the_replier_may_not_open_one_until_the_flow_expires()
    {
        var policy = new TrafficPolicy(_clock, peerIsolation: true);
        var site = policy.Compile(Rules("allow 192.168.50.0/24"), []);   // the office may reach site B's network
        policy.Replaced(null, site);
        Assert.True(policy.Permits(site, Tcp("10.8.0.2", "192.168.50.7", 40000, 443), toPeer: true));
        // Site B answers: isolation alone would refuse it.
        Assert.True(policy.Permits(null, Tcp("192.168.50.7", "10.8.0.2", 443, 40000), toPeer: true));
        Assert.Equal(1, policy.RepliesAllowed);
        // Site B may not open its own flow (another port pair) to the office.
        Assert.False(policy.Permits(null, Tcp("192.168.50.7", "10.8.0.2", 443, 40001), toPeer: true));
        Assert.False(policy.Permits(null, Tcp("192.168.50.7", "10.8.0.2", 5000, 22), toPeer: true));
        // Three minutes without a packet of the flow: its replies are new flows again.
        _clock.Advance(TimeSpan.FromMinutes(3) + TimeSpan.FromSeconds(1));
        Assert.False(policy.Permits(null, Tcp("192.168.50.7", "10.8.0.2", 443, 40000), toPeer: true));
    }

    [Fact]
    public void Ping_replies_of_an_allowed_echo_pass()
    {
        var policy = new TrafficPolicy(_clock, peerIsolation: true);
        var acl = policy.Compile(Rules("allow 10.8.0.3/32 icmp"), []);
        policy.Replaced(null, acl);
        Assert.True(policy.Permits(acl, TestSupport.Packets.EchoRequestV4("10.8.0.2", "10.8.0.3", 77, 1), toPeer: true));
        var reply = TestSupport.Packets.EchoRequestV4("10.8.0.3", "10.8.0.2", 77, 1);
        reply[20] = 0;   // echo reply, same identifier
        Assert.True(policy.Permits(null, reply, toPeer: true));
        Assert.False(policy.Permits(null, TestSupport.Packets.EchoRequestV4("10.8.0.3", "10.8.0.2", 78, 1), toPeer: true));
    }

    [Fact]
    public void An_acl_allowing_one_port_of_a_host_and_denying_the_rest_applies_to_the_egress_too()
    {
        var policy = new TrafficPolicy(_clock);
        var acl = policy.Compile(Rules("allow 203.0.113.10/32 tcp 443", "deny 203.0.113.10/32"), []);
        policy.Replaced(null, acl);
        Assert.True(policy.Permits(acl, Tcp("10.8.0.2", "203.0.113.10", 1000, 443), toPeer: false));
        Assert.False(policy.Permits(acl, Tcp("10.8.0.2", "203.0.113.10", 1000, 22), toPeer: false));
        Assert.False(policy.Permits(acl, Udp("10.8.0.2", "203.0.113.10", 1000, 443, [1]), toPeer: false));
        Assert.True(policy.Permits(acl, Tcp("10.8.0.2", "203.0.113.11", 1000, 22), toPeer: false));   // no rule: allowed
        Assert.True(policy.Permits(null, Tcp("10.8.0.4", "203.0.113.10", 1000, 22), toPeer: false)); // another peer: no rules
    }

    [Fact]
    public void Tag_rules_follow_the_peers_own_and_change_with_the_tag()
    {
        var policy = new TrafficPolicy(_clock, tagRules: new Dictionary<string, IReadOnlyList<AclRule>> { ["guests"] = Rules("deny 10.0.0.0/8") });
        var acl = policy.Compile(Rules("allow 10.1.0.5/32 tcp 80"), ["guests"])!;
        Assert.Equal(["allow 10.1.0.5/32 tcp 80", "deny 10.0.0.0/8"], acl.Effective.Select(r => r.ToString()));
        policy.Replaced(null, acl);
        Assert.True(policy.Permits(acl, Tcp("10.8.0.2", "10.1.0.5", 1, 80), toPeer: false));
        Assert.False(policy.Permits(acl, Tcp("10.8.0.2", "10.1.0.6", 1, 80), toPeer: false));
        policy.SetTagRules("GUESTS", []);   // tags are case-insensitive
        var again = policy.Compile(acl.Own, acl.Tags)!;
        Assert.Equal(["allow 10.1.0.5/32 tcp 80"], again.Effective.Select(r => r.ToString()));
    }

    [Fact]
    public void Malformed_packets_pass_only_unrestricted()
    {
        var policy = new TrafficPolicy(_clock, peerIsolation: true);
        Assert.False(policy.Permits(null, [0x45, 0, 0], toPeer: true));
        Assert.True(policy.Permits(null, [0x45, 0, 0], toPeer: false));
    }
}
