using WgPowerShell.Formatting;

namespace WgEngine.Tests.Client;

/// <summary>The client's wg-quick file: sections, key order and optional lines as wg-quick(8) reads them.</summary>
public class ClientConfigTextTests
{
    private static ClientConfigSpec Spec(string? psk = null, string[]? dns = null, int keepalive = 0) => new()
    {
        PrivateKey = "cPRIVATEcPRIVATEcPRIVATEcPRIVATEcPRIVATEcPQ=",
        Address = ["10.8.0.2/32", "fd00:8::2/128"],
        DNS = dns ?? [],
        ServerPublicKey = "sPUBLICsPUBLICsPUBLICsPUBLICsPUBLICsPUBLICw=",
        PresharedKey = psk,
        Endpoint = "203.0.113.5:51820",
        AllowedIPs = ["0.0.0.0/0", "::/0"],
        PersistentKeepalive = keepalive,
    };

    [Fact]
    public void Full_config_has_every_line_in_wg_quick_order()
    {
        var text = ClientConfigText.Render(Spec("pPSKpPSKpPSKpPSKpPSKpPSKpPSKpPSKpPSKpPSKpPQ=", ["1.1.1.1", "9.9.9.9"], 25));
        Assert.Equal(
            "[Interface]\n" +
            "PrivateKey = cPRIVATEcPRIVATEcPRIVATEcPRIVATEcPRIVATEcPQ=\n" +
            "Address = 10.8.0.2/32, fd00:8::2/128\n" +
            "DNS = 1.1.1.1, 9.9.9.9\n" +
            "\n" +
            "[Peer]\n" +
            "PublicKey = sPUBLICsPUBLICsPUBLICsPUBLICsPUBLICsPUBLICw=\n" +
            "PresharedKey = pPSKpPSKpPSKpPSKpPSKpPSKpPSKpPSKpPSKpPSKpPQ=\n" +
            "AllowedIPs = 0.0.0.0/0, ::/0\n" +
            "Endpoint = 203.0.113.5:51820\n" +
            "PersistentKeepalive = 25\n", text);
    }

    [Fact]
    public void Optional_lines_are_left_out_when_not_set()
    {
        var text = ClientConfigText.Render(Spec());
        Assert.DoesNotContain("PresharedKey", text);
        Assert.DoesNotContain("DNS", text);
        Assert.DoesNotContain("PersistentKeepalive", text);
        Assert.Contains("Endpoint = 203.0.113.5:51820\n", text);
        Assert.StartsWith("[Interface]\nPrivateKey = ", text);
    }
}
