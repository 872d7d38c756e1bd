using System.Net;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgPowerShell.Validation;

/// <summary>Text to engine types, after the validation attributes have vouched for the format.</summary>
internal static class Parse
{
    public static bool IsKey(string? text) => WgKey.TryParse(text, out _);

    public static WgKey Key(string text) => WgKey.Parse(text);

    /// <summary>Null or empty elements mean "none"; commas inside an element split it.</summary>
    public static List<IpPrefix> Prefixes(IEnumerable<string?>? items)
    {
        var list = new List<IpPrefix>();
        if (items is null) return list;
        foreach (var item in items)
        {
            if (string.IsNullOrWhiteSpace(item)) continue;
            foreach (var part in item.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                list.Add(IpPrefix.Parse(part));
        }
        return list;
    }

    public static IPEndPoint? Endpoint(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (!IPEndPoint.TryParse(text.Trim(), out var ep) || ep.Port == 0) return null;
        // IPEndPoint.TryParse takes a bare address with port 0; also "1.2" style partial addresses are refused.
        if (ep.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && text.Count(c => c == '.') != 3) return null;
        return ep;
    }

    /// <summary>"host:port" with a DNS name (not an IP address) and a port of 1-65535, as config files allow.</summary>
    public static bool IsHostEndpoint(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out int port) || port is < 1 or > 65535)
            return false;
        var host = text[..colon];
        return !IPAddress.TryParse(host, out _) && host.Any(char.IsAsciiLetter) && WgPowerShell.Formatting.ClientEndpoint.IsHostName(host);
    }
}
