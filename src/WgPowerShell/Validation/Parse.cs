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
}
