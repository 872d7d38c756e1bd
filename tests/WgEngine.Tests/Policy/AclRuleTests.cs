using WgEngine.Net;
using WgEngine.Policy;

namespace WgEngine.Tests.Policy;

public class AclRuleTests
{
    [Theory]
    [InlineData("allow 10.1.0.5/32 tcp 443", "allow 10.1.0.5/32 tcp 443")]
    [InlineData("DENY 10.1.0.0/16", "deny 10.1.0.0/16")]
    [InlineData("allow 10.1.2.3/16 udp 5000-5010", "allow 10.1.0.0/16 udp 5000-5010")]
    [InlineData("allow fd00::/8 icmp", "allow fd00::/8 icmp")]
    [InlineData("deny 192.168.1.1 any", "deny 192.168.1.1/32")]
    public void Parses_and_prints_the_text_form(string text, string printed)
    {
        var rule = Assert.Single(AclRule.Parse(text));
        Assert.Equal(printed, rule.ToString());
        Assert.Equal(rule, Assert.Single(AclRule.Parse(rule.ToString())));
    }

    [Fact]
    public void Any_destination_is_one_rule_per_family()
    {
        var rules = AclRule.Parse("deny any tcp 22");
        Assert.Equal(["deny 0.0.0.0/0 tcp 22", "deny ::/0 tcp 22"], rules.Select(r => r.ToString()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("permit 10.0.0.0/8")]
    [InlineData("allow")]
    [InlineData("allow 10.0.0.0/33")]
    [InlineData("allow 10.0.0.0/8 gre")]
    [InlineData("allow 10.0.0.0/8 6")]
    [InlineData("allow 10.0.0.0/8 icmp 5")]
    [InlineData("allow 10.0.0.0/8 tcp 70000")]
    [InlineData("allow 10.0.0.0/8 tcp 90-80")]
    [InlineData("allow 10.0.0.0/8 tcp 80 extra")]
    public void Refuses_malformed_rules_with_a_message_naming_the_rule(string text)
    {
        Assert.False(AclRule.TryParse(text, out _, out var error));
        Assert.Contains("ACL rule", error);
        Assert.Throws<FormatException>(() => AclRule.Parse(text));
    }

    [Fact]
    public void Matches_by_family_prefix_protocol_and_port()
    {
        var rule = Assert.Single(AclRule.Parse("allow 10.1.0.0/16 tcp 80-90"));
        Assert.True(rule.Matches(true, 0x0A01FF01, 6, 85));
        Assert.False(rule.Matches(true, 0x0A02FF01, 6, 85));    // other prefix
        Assert.False(rule.Matches(true, 0x0A01FF01, 17, 85));   // udp
        Assert.False(rule.Matches(true, 0x0A01FF01, 6, 91));    // port outside
        Assert.False(rule.Matches(false, 0x0A01FF01, 6, 85));   // IPv6 packet
        var icmp = Assert.Single(AclRule.Parse("allow fd00::/8 icmp"));
        Assert.True(icmp.Matches(false, UInt128.Parse("0xFD000000000000000000000000000001".Replace("0x", ""), System.Globalization.NumberStyles.HexNumber), 58, -1));
        var all = new AclRule(false, IpPrefix.Parse("0.0.0.0/0"));
        Assert.True(all.Matches(true, 0xFFFFFFFF, 47, -1));
    }
}
