using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgEngine.Tests.Config;

public class WgConfigParserTests
{
    private static readonly string Priv = WgPrivateKey.Generate().ExportBase64();
    private static readonly string PubA = WgPrivateKey.Generate().PublicKey.ToBase64();
    private static readonly string PubB = WgPrivateKey.Generate().PublicKey.ToBase64();
    private static readonly string Psk = WgPrivateKey.Generate().PublicKey.ToBase64();

    private static string Sample() => $"""
        # a comment line
        [Interface]
        PrivateKey = {Priv}
        ListenPort = 51820
        Address = 10.8.0.1/24, fd00::1/64
        DNS = 1.1.1.1, example.lan
        MTU = 1420
        FwMark = 0x2a
        Table = off
        PostUp = iptables -A FORWARD -i %i -j ACCEPT
        SaveConfig = false

        [Peer]
        #! Name = alice
        #! ExpiresAt = 2026-12-31T00:00:00Z
        PublicKey = {PubA}
        PresharedKey = {Psk}
        AllowedIPs = 10.8.0.2/32
        AllowedIPs = fd00::2/128   # repeated keys append
        Endpoint = vpn.example.com:51820
        PersistentKeepalive = 25
        FutureKey = kept

        #~ [Peer]
        #~ #! Name = bob
        #~ PublicKey = {PubB}
        #~ AllowedIPs = 10.8.0.3/32
        """;

    [Fact]
    public void Reads_every_key_of_the_sample()
    {
        var c = WgConfigParser.Parse(Sample());
        var i = c.Interface;
        Assert.Equal(Priv, i.PrivateKey);
        Assert.Equal(51820, i.ListenPort);
        Assert.Equal([IpPrefix.Parse("10.8.0.1/24"), IpPrefix.Parse("fd00::1/64")], i.Address);
        Assert.Equal(["1.1.1.1", "example.lan"], i.Dns);
        Assert.Equal(1420, i.Mtu);
        Assert.Equal(0x2au, i.FwMark);
        Assert.Equal(["Table", "PostUp", "SaveConfig"], i.Extra.Select(e => e.Key));
        Assert.Equal("iptables -A FORWARD -i %i -j ACCEPT", i.Extra[1].Value);
        Assert.Equal(2, c.Peers.Count);
        var a = c.Peers[0];
        Assert.Equal(PubA, a.PublicKey.ToBase64());
        Assert.Equal(Psk, a.PresharedKey!.Value.ToBase64());
        Assert.Equal([IpPrefix.Parse("10.8.0.2/32"), IpPrefix.Parse("fd00::2/128")], a.AllowedIPs);
        Assert.Equal("vpn.example.com:51820", a.Endpoint);
        Assert.Equal(25, a.PersistentKeepalive);
        Assert.Equal("alice", a.Name);
        Assert.Equal(new DateTimeOffset(2026, 12, 31, 0, 0, 0, TimeSpan.Zero), a.ExpiresAt);
        Assert.False(a.Disabled);
        Assert.Equal("FutureKey", Assert.Single(a.Extra).Key);
        var b = c.Peers[1];
        Assert.True(b.Disabled);
        Assert.Equal("bob", b.Name);
        Assert.Equal(PubB, b.PublicKey.ToBase64());
        Assert.Equal(24, b.Line);
    }

    [Fact]
    public void Keys_and_sections_are_case_insensitive_and_CRLF_is_accepted()
    {
        var text = $"[INTERFACE]\r\nprivatekey={Priv}\r\nlistenport = 7\r\n\r\n[peer]\r\npublickey = {PubA}\r\nallowedips=10.0.0.0/8\r\n";
        var c = WgConfigParser.Parse(text);
        Assert.Equal(Priv, c.Interface.PrivateKey);
        Assert.Equal(7, c.Interface.ListenPort);
        Assert.Equal(IpPrefix.Parse("10.0.0.0/8"), Assert.Single(Assert.Single(c.Peers).AllowedIPs));
    }

    [Theory]
    [InlineData("[Interface]\nListenPort = 70000", 2, "ListenPort")]
    [InlineData("[Interface]\n\n[Peer]\nAllowedIPs = 10.0.0.1/33", 4, "AllowedIPs")]
    [InlineData("ListenPort = 1", 1, "before any")]
    [InlineData("[Interface]\n[Bogus]", 2, "unknown section")]
    [InlineData("[Interface]\nnot a key value line", 2, "Key = Value")]
    [InlineData("[Interface]\n[Peer]\nAllowedIPs = 10.0.0.1/32", 2, "no PublicKey")]
    [InlineData("[Interface]\n[Interface]", 2, "second [Interface]")]
    [InlineData("[Peer]\nPublicKey = AAAA", 2, "PublicKey")]
    [InlineData("[Interface]\nMTU = big", 2, "MTU")]
    [InlineData("[Interface]\nFwMark = 0xZZ", 2, "FwMark")]
    public void Errors_name_the_source_and_line(string text, int line, string what)
    {
        var e = Assert.Throws<WgException>(() => WgConfigParser.Parse(text, "/etc/wg/x.conf"));
        Assert.Equal(WgErrorKind.InvalidData, e.Kind);
        Assert.Equal("ConfigParseError", e.ErrorId);
        Assert.StartsWith($"/etc/wg/x.conf, line {line}:", e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void Duplicate_peer_names_both_lines()
    {
        var e = Assert.Throws<WgException>(() => WgConfigParser.Parse($"[Peer]\nPublicKey = {PubA}\n\n[Peer]\nPublicKey = {PubA}"));
        Assert.Contains("line 4:", e.Message);
        Assert.Contains("line 1", e.Message);
    }

    [Fact]
    public void A_bad_key_line_never_shows_its_value()
    {
        // 44 characters of base64 that decode to 33 bytes' worth: invalid, and must not be echoed.
        var secretish = Priv[..40] + "AAA=";
        var bad = Priv[..43] + "!";
        foreach (var text in new[]
        {
            $"[Interface]\nPrivateKey = {bad}",
            $"[Peer]\nPublicKey = {PubA}\nPresharedKey = {bad}",
            $"[Interface]\nPrivateKey = {Priv}\nPrivateKey = {Priv}",
            $"[Interface]\n{Priv}",
        })
        {
            var e = Assert.Throws<WgException>(() => WgConfigParser.Parse(text));
            Assert.DoesNotContain(Priv[..20], e.Message);
            Assert.DoesNotContain(secretish[..20], e.Message);
        }
    }

    [Fact]
    public void A_normal_line_inside_a_disabled_section_is_refused()
    {
        // wg-quick would apply it to the previous enabled peer: the file would mean two different things.
        var e = Assert.Throws<WgException>(() => WgConfigParser.Parse($"#~ [Peer]\n#~ PublicKey = {PubA}\nAllowedIPs = 10.0.0.1/32"));
        Assert.Contains("line 3:", e.Message);
    }
}
