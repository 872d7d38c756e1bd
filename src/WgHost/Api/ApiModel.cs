using System.Net;
using System.Text.RegularExpressions;
using WgApi;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgHost.Api;

/// <summary>Engine objects to the API's DTOs and request text to engine types. A malformed field is a
/// WgException(InvalidArgument) with a stable id, so that it becomes a 400 before anything changes.</summary>
internal static class ApiModel
{
    public static ServerDto ToDto(IGatewayServer s) => new()
    {
        Name = s.Name, PublicKey = s.PublicKey.ToBase64(), ListenPort = s.ListenPort,
        Address = s.Addresses.Select(a => a.ToString()).ToArray(), Backend = s.BackendKind, Egress = s.Egress.ToString(),
        PeerCount = s.PeerCount, State = s.State.ToString(), StartedAt = s.StartedAt,
        ReceivedBytes = s.ReceivedBytes, SentBytes = s.SentBytes, ConfigPath = s.ConfigPath, UapiPath = s.UapiPath,
        BindAddress = s.BindAddress?.ToString(), Mtu = s.Mtu, ConfigReadOnly = s.ConfigReadOnly,
        PeerIsolation = s.PeerIsolation, EgressUnprotected = s.EgressRules.Unprotected,
        EgressAllow = s.EgressRules.Allow.Select(a => a.ToString()).ToArray(),
        EgressDeny = s.EgressRules.Deny.Select(a => a.ToString()).ToArray(),
        TagRules = s.TagRules.ToDictionary(kv => kv.Key, kv => kv.Value.Select(r => r.ToString()).ToArray(), StringComparer.OrdinalIgnoreCase),
    };

    public static PeerDto ToDto(PeerStatus p) => new()
    {
        PublicKey = p.PublicKey.ToBase64(), Name = p.Name, AllowedIPs = p.AllowedIPs.Select(a => a.ToString()).ToArray(),
        Endpoint = FormatEndpoint(p.Endpoint), LatestHandshake = p.LatestHandshake, ReceivedBytes = p.ReceivedBytes,
        SentBytes = p.SentBytes, PersistentKeepalive = p.PersistentKeepalive, HasPresharedKey = p.HasPresharedKey,
        Enabled = p.Enabled, ExpiresAt = p.ExpiresAt, Tags = [.. p.Tags], Acl = p.Acl.Select(r => r.ToString()).ToArray(),
        DisabledReason = p.DisabledReason,
    };

    public static string? FormatEndpoint(IPEndPoint? e)
    {
        if (e is null) return null;
        var a = e.Address.IsIPv4MappedToIPv6 ? e.Address.MapToIPv4() : e.Address;
        return new IPEndPoint(a, e.Port).ToString();
    }

    /// <summary>A key from a URL segment: base64url, or standard base64 with '/' escaped as %2F.</summary>
    public static WgKey KeyFromRoute(string text)
    {
        var t = text.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase).Replace("%2B", "+", StringComparison.OrdinalIgnoreCase)
            .Replace("%3D", "=", StringComparison.OrdinalIgnoreCase).Replace('-', '+').Replace('_', '/');
        if (t.Length == 43) t += "=";
        return Key(t, "publicKey");
    }

    public static WgKey Key(string? text, string field) =>
        WgKey.TryParse(text, out var k) ? k
        : throw new WgException(WgErrorKind.InvalidArgument, "InvalidKey", $"'{field}' is not a WireGuard key (44 characters of base64).");

    public static WgKey? OptionalKey(string? text, string field) => string.IsNullOrEmpty(text) ? null : Key(text, field);

    public static List<IpPrefix> Prefixes(string[]? items, string field)
    {
        var list = new List<IpPrefix>();
        foreach (var item in items ?? [])
            foreach (var part in (item ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                list.Add(IpPrefix.TryParse(part, out var p) ? p
                    : throw new WgException(WgErrorKind.InvalidArgument, "InvalidCidr", $"'{field}': '{Shorten(part)}' is not a CIDR such as 10.8.0.2/32."));
        return list;
    }

    public static IPEndPoint? Endpoint(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (IPEndPoint.TryParse(text.Trim(), out var ep) && ep.Port != 0
            && (ep.Address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || text.Count(c => c == '.') == 3))
            return ep;
        throw new WgException(WgErrorKind.InvalidArgument, "InvalidEndpoint", $"'endpoint': '{Shorten(text)}' is not ip:port (e.g. 203.0.113.5:51820 or [2001:db8::1]:51820).");
    }

    public static int Keepalive(int? value) => value is null or (>= 0 and <= 65535) ? value ?? 0
        : throw new WgException(WgErrorKind.InvalidArgument, "InvalidPersistentKeepalive", "'persistentKeepalive' must be 0 to 65535 seconds.");

    public static PeerSpec ToSpec(PeerCreateDto d) => new()
    {
        PublicKey = Key(d.PublicKey, "publicKey"),
        AllowedIPs = Prefixes(d.AllowedIPs, "allowedIPs"),
        Name = string.IsNullOrEmpty(d.Name) ? null : d.Name,
        PresharedKey = OptionalKey(d.PresharedKey, "presharedKey"),
        Endpoint = Endpoint(d.Endpoint),
        PersistentKeepalive = Keepalive(d.PersistentKeepalive),
        ExpiresAt = d.ExpiresAt,
        Disabled = d.Disabled,
    };

    public static PeerUpdate ToUpdate(PeerUpdateDto d) => new()
    {
        AllowedIPs = d.AllowedIPs is null ? null : Prefixes(d.AllowedIPs, "allowedIPs"),
        Name = d.Name,
        PresharedKey = OptionalKey(d.PresharedKey, "presharedKey"),
        ClearPresharedKey = d.ClearPresharedKey,
        Endpoint = Endpoint(d.Endpoint),
        PersistentKeepalive = d.PersistentKeepalive is null ? null : Keepalive(d.PersistentKeepalive),
        ExpiresAt = d.ExpiresAt,
        ClearExpiresAt = d.ClearExpiresAt,
    };

    /// <summary>Get-WgPeer -Name semantics: * and ? wildcards, case-insensitive.</summary>
    public static Regex? Wildcard(string? pattern) => string.IsNullOrEmpty(pattern) ? null
        : new Regex("^" + Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>Echoed input is cut short: an error message never carries a long (possibly secret) value.</summary>
    private static string Shorten(string s) => s.Length <= 48 ? s : s[..45] + "...";
}
