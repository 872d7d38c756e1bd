using WgEngine.Config;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Tests.Config;

public class WgConfigWriterTests
{
    private static WgConfig Model()
    {
        var c = new WgConfig();
        c.Interface.PrivateKey = WgPrivateKey.Generate().ExportBase64();
        c.Interface.ListenPort = 51000;
        c.Interface.FwMark = 7;
        c.Interface.Address.Add(IpPrefix.Parse("10.9.0.1/24"));
        c.Interface.Dns.Add("9.9.9.9");
        c.Interface.Mtu = 1380;
        c.Interface.Extra.Add(new("PostUp", "echo up # not a comment once parsed? no: stripped"));
        c.Interface.Extra.Add(new("Table", "1234"));
        var a = new WgPeerSection
        {
            PublicKey = WgPrivateKey.Generate().PublicKey, PresharedKey = WgPrivateKey.Generate().PublicKey,
            Endpoint = "[fd00::5]:51820", PersistentKeepalive = 15, Name = "alice = admin", ExpiresAt = new DateTimeOffset(2027, 1, 2, 3, 4, 5, 6, TimeSpan.FromHours(2)),
        };
        a.AllowedIPs.Add(IpPrefix.Parse("10.9.0.2/32"));
        a.AllowedIPs.Add(IpPrefix.Parse("192.168.5.0/24"));
        a.Extra.Add(new("Unknown", "x"));
        var b = new WgPeerSection { PublicKey = WgPrivateKey.Generate().PublicKey, Disabled = true, Name = "bob" };
        b.AllowedIPs.Add(IpPrefix.Parse("10.9.0.3/32"));
        var n = new WgPeerSection { PublicKey = WgPrivateKey.Generate().PublicKey };
        c.Peers.AddRange([a, b, n]);
        return c;
    }

    private static void AssertSame(WgConfig x, WgConfig y, bool wgOnly = false)
    {
        Assert.Equal(x.Interface.PrivateKey, y.Interface.PrivateKey);
        Assert.Equal(x.Interface.ListenPort, y.Interface.ListenPort);
        Assert.Equal(x.Interface.FwMark, y.Interface.FwMark);
        if (!wgOnly)
        {
            Assert.Equal(x.Interface.Address, y.Interface.Address);
            Assert.Equal(x.Interface.Dns, y.Interface.Dns);
            Assert.Equal(x.Interface.Mtu, y.Interface.Mtu);
            Assert.Equal(x.Interface.Extra, y.Interface.Extra);
        }
        var xs = wgOnly ? x.Peers.Where(p => !p.Disabled).ToList() : x.Peers;
        Assert.Equal(xs.Count, y.Peers.Count);
        for (int k = 0; k < xs.Count; k++)
        {
            var (p, q) = (xs[k], y.Peers[k]);
            Assert.Equal(p.PublicKey, q.PublicKey);
            Assert.Equal(p.PresharedKey, q.PresharedKey);
            Assert.Equal(p.AllowedIPs, q.AllowedIPs);
            Assert.Equal(p.Endpoint, q.Endpoint);
            Assert.Equal(p.PersistentKeepalive, q.PersistentKeepalive);
            if (wgOnly) continue;
            Assert.Equal(p.Name, q.Name);
            Assert.Equal(p.Disabled, q.Disabled);
            Assert.Equal(p.ExpiresAt, q.ExpiresAt);
            Assert.Equal(p.Extra, q.Extra);
        }
    }

    [Fact]
    public void WgQuick_round_trips_everything()
    {
        var m = Model();
        m.Interface.Extra[0] = new("PostUp", "echo up");   // '#' would start a comment: not representable
        var text = WgConfigWriter.Write(m);
        AssertSame(m, WgConfigParser.Parse(text));
        Assert.Equal(text, WgConfigWriter.Write(WgConfigParser.Parse(text)));
    }

    [Fact]
    public void A_disabled_peer_is_wholly_commented_out()
    {
        var text = WgConfigWriter.Write(Model());
        var bob = text[text.IndexOf("#~ [Peer]", StringComparison.Ordinal)..];
        bob = bob[..bob.IndexOf("\n\n", StringComparison.Ordinal)];
        Assert.All(bob.Split('\n'), l => Assert.StartsWith("#~ ", l));
        Assert.Contains("#~ #! Name = bob", bob);
        // What wg-quick sees after stripping comments: no trace of bob.
        var stripped = string.Join('\n', text.Split('\n').Select(l => l.Contains('#') ? l[..l.IndexOf('#')] : l));
        Assert.Equal(2, stripped.Split("[Peer]").Length - 1);
    }

    [Fact]
    public void ShowConf_has_only_wg_keys_in_wg_layout_and_round_trips_them()
    {
        var m = Model();
        var text = WgConfigWriter.Write(m, WgConfigFormat.ShowConf);
        Assert.StartsWith($"[Interface]\nListenPort = 51000\nFwMark = 0x7\nPrivateKey = {m.Interface.PrivateKey}\n\n[Peer]\nPublicKey = ", text);
        foreach (var word in new[] { "Address", "DNS", "MTU", "Table", "PostUp", "#", "Unknown" })
            Assert.DoesNotContain(word, text);
        AssertSame(m, WgConfigParser.Parse(text), wgOnly: true);
    }

    [Fact]
    public void Without_the_private_key_flag_no_key_line_is_written()
    {
        var m = Model();
        foreach (var f in new[] { WgConfigFormat.WgQuick, WgConfigFormat.ShowConf })
        {
            var text = WgConfigWriter.Write(m, f, includePrivateKey: false);
            Assert.DoesNotContain("PrivateKey", text);
            Assert.DoesNotContain(m.Interface.PrivateKey!, text);
        }
        Assert.DoesNotContain(m.Interface.PrivateKey!, m.Interface.ToString());
    }

    [Fact]
    public void A_name_with_a_line_break_is_refused()
    {
        var m = Model();
        m.Peers[0].Name = "evil\n[Peer]";
        Assert.Throws<ArgumentException>(() => WgConfigWriter.Write(m));
    }
}
