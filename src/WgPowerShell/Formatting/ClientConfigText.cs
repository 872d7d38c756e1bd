using WgEngine.Config;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgPowerShell.Formatting;

/// <summary>What a client's wg-quick file says. Plain text fields: the caller has validated them.</summary>
public sealed class ClientConfigSpec
{
    /// <summary>The client's private key (base64). Lives only in the rendered text.</summary>
    public required string PrivateKey { get; init; }
    /// <summary>The client's tunnel addresses, CIDR ("10.8.0.2/32").</summary>
    public required IReadOnlyList<string> Address { get; init; }
    public IReadOnlyList<string> DNS { get; init; } = [];
    public required string ServerPublicKey { get; init; }
    public string? PresharedKey { get; init; }
    /// <summary>"host:port" the client dials.</summary>
    public required string Endpoint { get; init; }
    /// <summary>What the client routes into the tunnel.</summary>
    public required IReadOnlyList<string> AllowedIPs { get; init; }
    /// <summary>Seconds; 0 leaves the line out.</summary>
    public int PersistentKeepalive { get; init; }
}

/// <summary>
/// Renders a client's wg-quick file ([Interface] then one [Peer]: the gateway) through the engine's
/// wg-quick writer, so a client file is exactly what the gateway's own parser and wg-quick(8) read.
/// </summary>
public static class ClientConfigText
{
    public static string Render(ClientConfigSpec c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var config = new WgConfig();
        config.Interface.PrivateKey = c.PrivateKey;
        foreach (var a in c.Address) config.Interface.Address.Add(IpPrefix.Parse(a));
        config.Interface.Dns.AddRange(c.DNS);
        var gateway = new WgPeerSection
        {
            PublicKey = WgKey.Parse(c.ServerPublicKey),
            PresharedKey = string.IsNullOrEmpty(c.PresharedKey) ? null : WgKey.Parse(c.PresharedKey),
            Endpoint = c.Endpoint,
            PersistentKeepalive = c.PersistentKeepalive,
        };
        foreach (var a in c.AllowedIPs) gateway.AllowedIPs.Add(IpPrefix.Parse(a));
        config.Peers.Add(gateway);
        return WgConfigWriter.Write(config);
    }
}
