using System.Net;
using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Egress;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgEngine.Tests.Config;

/// <summary>Egress rules in the config file: "#! Egress... = ..." lines of [Interface], which wg-quick ignores.</summary>
[Collection("AtomicFile")]
public sealed class EgressRulesPersistenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wgpersist-egress-").FullName;
    private string PathOf => Path.Combine(_dir, "wg0.conf");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private VPNServer Start(EgressOptions? egress = null, bool overrideRules = false, EgressMode mode = EgressMode.Userspace) => VPNServer.Start(new ServerOptions
    {
        ListenPort = 0, BindAddress = IPAddress.Loopback, ConfigPath = PathOf, Egress = mode,
        EgressOptions = egress, OverrideEgressRules = overrideRules,
    });

    [Fact]
    public void The_extension_lines_round_trip_and_wg_quick_sees_only_comments()
    {
        var config = new WgConfig();
        config.Interface.PrivateKey = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28=";
        config.Interface.EgressAllow.AddRange([IpPrefix.Parse("10.1.0.0/16"), IpPrefix.Parse("fd00:1::/48")]);
        config.Interface.EgressDeny.Add(IpPrefix.Parse("8.8.8.0/24"));
        config.Interface.EgressUnprotected = true;
        var text = WgConfigWriter.Write(config);
        Assert.Contains("#! EgressAllow = 10.1.0.0/16, fd00:1::/48\n", text);
        Assert.Contains("#! EgressDeny = 8.8.8.0/24\n", text);
        Assert.Contains("#! EgressUnprotected = true\n", text);
        Assert.All(text.Split('\n').Where(l => l.Contains("Egress")), l => Assert.StartsWith("#", l));
        Assert.DoesNotContain("Egress", WgConfigWriter.Write(config, WgConfigFormat.ShowConf));

        var back = WgConfigParser.Parse(text, "test").Interface;
        Assert.Equal(config.Interface.EgressAllow, back.EgressAllow);
        Assert.Equal(config.Interface.EgressDeny, back.EgressDeny);
        Assert.True(back.EgressUnprotected);
    }

    [Theory]
    [InlineData("#! EgressAllow = 10.0.0.0/33", "EgressAllow '10.0.0.0/33'")]
    [InlineData("#! EgressDeny = nonsense", "EgressDeny 'nonsense'")]
    [InlineData("#! EgressUnprotected = maybe", "EgressUnprotected 'maybe'")]
    public void A_bad_rule_line_is_a_parse_error_naming_the_line(string line, string expected)
    {
        var e = Assert.Throws<WgException>(() => WgConfigParser.Parse($"[Interface]\nListenPort = 1\n{line}\n", "f.conf"));
        Assert.Equal("ConfigParseError", e.ErrorId);
        Assert.Contains("line 3", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Rules_set_at_runtime_are_enforced_at_once_written_and_restored_after_a_restart()
    {
        var allow = new[] { IpPrefix.Parse("10.1.0.0/16") };
        var deny = new[] { IpPrefix.Parse("8.8.8.0/24") };
        using (var s = Start())
        {
            var policy = s.UserspaceEgress!.Policy;
            Assert.False(policy.IsAllowed(IPAddress.Parse("10.1.2.3")));
            s.SetEgressRules(new EgressRules(allow, deny));
            Assert.True(policy.IsAllowed(IPAddress.Parse("10.1.2.3")));
            Assert.False(policy.IsAllowed(IPAddress.Parse("8.8.8.8")));
            var onDisk = WgConfigParser.ParseFile(PathOf).Interface;
            Assert.Equal(allow, onDisk.EgressAllow);
            Assert.Equal(deny, onDisk.EgressDeny);
        }
        using (var s = Start())
        {
            Assert.Equal(allow, s.EgressRules.Allow);
            Assert.Equal(deny, s.EgressRules.Deny);
            var policy = s.UserspaceEgress!.Policy;
            Assert.True(policy.IsAllowed(IPAddress.Parse("10.1.2.3")));
            Assert.False(policy.IsAllowed(IPAddress.Parse("8.8.8.8")));
        }
        // Rules given at start override the file's and are written back.
        using (var s = Start(new EgressOptions { Deny = [IpPrefix.Parse("1.1.1.1/32")] }, overrideRules: true))
        {
            Assert.Empty(s.EgressRules.Allow);
            Assert.Equal([IpPrefix.Parse("1.1.1.1/32")], s.EgressRules.Deny);
            Assert.Equal([IpPrefix.Parse("1.1.1.1/32")], WgConfigParser.ParseFile(PathOf).Interface.EgressDeny);
        }
        // A server without a userspace egress keeps the file's rules but refuses to change them.
        using (var s = Start(mode: EgressMode.None))
        {
            var e = Assert.Throws<WgException>(() => s.SetEgressRules(EgressRules.Default));
            Assert.Equal("EgressRulesNotApplicable", e.ErrorId);
            s.Persist();
            Assert.Equal([IpPrefix.Parse("1.1.1.1/32")], WgConfigParser.ParseFile(PathOf).Interface.EgressDeny);
        }
    }
}
