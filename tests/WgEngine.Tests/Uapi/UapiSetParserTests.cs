using System.Net;
using WgEngine.Crypto;
using WgEngine.Net;
using WgEngine.Uapi;

namespace WgEngine.Tests.Uapi;

public class UapiSetParserTests
{
    private static readonly string Pk = WgPrivateKey.Generate().PublicKey.ToHex();

    private static (UapiSetParser Parser, int Errno) Feed(params string[] lines)
    {
        var p = new UapiSetParser();
        foreach (var l in lines)
        {
            int e = p.Feed(l);
            if (e != 0) return (p, e);
        }
        return (p, 0);
    }

    [Fact]
    public void Parses_device_and_peer_sections_in_order()
    {
        var priv = WgPrivateKey.Generate();
        var psk = WgPrivateKey.Generate().PublicKey;
        var (p, errno) = Feed($"private_key={priv.ExportHex()}", "listen_port=51820", "fwmark=4294967295", "replace_peers=true",
            $"public_key={Pk}", $"preshared_key={psk.ToHex()}", "endpoint=[2001:db8::1]:443", "persistent_keepalive_interval=25",
            "replace_allowed_ips=true", "allowed_ip=10.0.0.1/24", "allowed_ip=fd00::/64", "protocol_version=1",
            $"public_key={Pk.ToUpperInvariant()}", "update_only=true", "remove=true");
        Assert.Equal(0, errno);
        var r = p.Request;
        Assert.Equal(priv.PublicKey, r.PrivateKey!.PublicKey);
        Assert.Equal(51820, r.ListenPort);
        Assert.Equal(uint.MaxValue, r.Fwmark);
        Assert.True(r.ReplacePeers);
        Assert.Equal(2, r.Peers.Count);
        var a = r.Peers[0];
        Assert.Equal(Pk, a.PublicKey.ToHex());
        Assert.Equal(psk, a.PresharedKey);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::1"), 443), a.Endpoint);
        Assert.Equal(25, a.PersistentKeepalive);
        Assert.True(a.ReplaceAllowedIPs);
        Assert.Equal([IpPrefix.Parse("10.0.0.1/24"), IpPrefix.Parse("fd00::/64")], a.AllowedIPs);
        Assert.Equal(a.PublicKey, r.Peers[1].PublicKey);
        Assert.True(r.Peers[1].Remove);
    }

    [Fact]
    public void Replace_allowed_ips_drops_the_ones_listed_before_it()
    {
        var (p, _) = Feed($"public_key={Pk}", "allowed_ip=10.0.0.1/32", "replace_allowed_ips=true", "allowed_ip=10.0.0.2/32");
        Assert.Equal([IpPrefix.Parse("10.0.0.2/32")], p.Request.Peers[0].AllowedIPs);
    }

    [Fact]
    public void Lines_after_remove_are_checked_but_change_nothing()
    {
        var (p, errno) = Feed($"public_key={Pk}", "remove=true", "allowed_ip=10.0.0.2/32", "persistent_keepalive_interval=5");
        Assert.Equal(0, errno);
        Assert.Empty(p.Request.Peers[0].AllowedIPs);
        Assert.Null(p.Request.Peers[0].PersistentKeepalive);
        Assert.Equal(UapiErrno.Invalid, Feed($"public_key={Pk}", "remove=true", "allowed_ip=nonsense").Errno);
    }

    [Fact]
    public void An_all_zero_private_key_means_clear()
    {
        var (p, errno) = Feed("private_key=" + new string('0', 64));
        Assert.Equal(0, errno);
        Assert.True(p.Request.ClearPrivateKey);
        Assert.Null(p.Request.PrivateKey);
    }

    // Expected errnos checked against wireguard-go 0.0.20220316 (tests/Interop/Uapi.Tests.ps1 sends the same bytes to both).
    [Theory]
    [InlineData("noequals", UapiErrno.Protocol)]
    [InlineData("foo=bar", UapiErrno.Invalid)]
    [InlineData("=1", UapiErrno.Invalid)]
    [InlineData("private_key=zz", UapiErrno.Invalid)]
    [InlineData("listen_port=65536", UapiErrno.Invalid)]
    [InlineData("listen_port=-1", UapiErrno.Invalid)]
    [InlineData("listen_port= 1", UapiErrno.Invalid)]
    [InlineData("fwmark=4294967296", UapiErrno.Invalid)]
    [InlineData("fwmark=0x10", UapiErrno.Invalid)]
    [InlineData("replace_peers=false", UapiErrno.Invalid)]
    [InlineData("public_key=abcd", UapiErrno.Invalid)]
    [InlineData("public_key=", UapiErrno.Invalid)]
    public void Bad_device_lines_get_wireguard_go_errnos(string line, int errno) =>
        Assert.Equal(errno, Feed(line).Errno);

    [Theory]
    [InlineData("bogus=1")]
    [InlineData("listen_port=1")]
    [InlineData("update_only=yes")]
    [InlineData("remove=1")]
    [InlineData("preshared_key=123")]
    [InlineData("endpoint=example.com:51820")]
    [InlineData("endpoint=::1:51820")]
    [InlineData("endpoint=1.2.3.4")]
    [InlineData("endpoint=1.2.3.4:65536")]
    [InlineData("endpoint=[fe80::1%eth0]:1")]
    [InlineData("persistent_keepalive_interval=+5")]
    [InlineData("persistent_keepalive_interval=65536")]
    [InlineData("replace_allowed_ips=1")]
    [InlineData("allowed_ip=10.0.0.1")]
    [InlineData("allowed_ip=10.0.0.0/33")]
    [InlineData("allowed_ip=::/129")]
    [InlineData("allowed_ip=010.0.0.1/32")]
    [InlineData("allowed_ip=10.1/8")]
    [InlineData("allowed_ip=10.0.0.0/-1")]
    [InlineData("protocol_version=2")]
    public void Bad_peer_lines_are_invalid(string line) =>
        Assert.Equal(UapiErrno.Invalid, Feed($"public_key={Pk}", line).Errno);

    [Fact]
    public void Lines_before_a_bad_one_are_kept()
    {
        var (p, errno) = Feed("listen_port=1234", $"public_key={Pk}", "allowed_ip=10.0.0.2/32", "bogus=1");
        Assert.Equal(UapiErrno.Invalid, errno);
        Assert.Equal(1234, p.Request.ListenPort);
        Assert.Single(p.Request.Peers[0].AllowedIPs);
        Assert.DoesNotContain("bogus=1", p.Error);
    }

    [Fact]
    public void Error_text_never_echoes_a_key_value()
    {
        var secret = new string('z', 64);
        var (p, _) = Feed("private_key=" + secret);
        Assert.DoesNotContain(secret, p.Error);
    }
}
