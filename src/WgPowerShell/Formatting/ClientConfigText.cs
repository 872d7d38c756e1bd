using System.Text;

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
/// Renders a client's wg-quick file ([Interface] then one [Peer]: the gateway), in the key order and
/// "Key = Value" form that wg-quick(8) and the WireGuard apps read. Lines end in "\n".
/// </summary>
public static class ClientConfigText
{
    public static string Render(ClientConfigSpec c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var sb = new StringBuilder(320);
        sb.Append("[Interface]\n");
        Line(sb, "PrivateKey", c.PrivateKey);
        Line(sb, "Address", string.Join(", ", c.Address));
        if (c.DNS.Count > 0) Line(sb, "DNS", string.Join(", ", c.DNS));
        sb.Append('\n');
        sb.Append("[Peer]\n");
        Line(sb, "PublicKey", c.ServerPublicKey);
        if (!string.IsNullOrEmpty(c.PresharedKey)) Line(sb, "PresharedKey", c.PresharedKey);
        Line(sb, "AllowedIPs", string.Join(", ", c.AllowedIPs));
        Line(sb, "Endpoint", c.Endpoint);
        if (c.PersistentKeepalive > 0) Line(sb, "PersistentKeepalive", c.PersistentKeepalive.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    private static void Line(StringBuilder sb, string key, string value) => sb.Append(key).Append(" = ").Append(value).Append('\n');
}
