using System.Globalization;
using System.Text;
using WgEngine.Net;

namespace WgEngine.Config;

/// <summary>
/// Writes a <see cref="WgConfig"/> as wg-quick text (everything, extension included) or as
/// `wg showconf` prints it (wg(8) keys only). <see cref="WgConfigParser"/> reads both back unchanged.
/// </summary>
public static class WgConfigWriter
{
    /// <param name="includePrivateKey">False leaves the PrivateKey line out (text meant for display).</param>
    /// <param name="includePresharedKeys">False leaves every PresharedKey line out (text meant for display).</param>
    public static string Write(WgConfig config, WgConfigFormat format = WgConfigFormat.WgQuick, bool includePrivateKey = true,
        bool includePresharedKeys = true)
    {
        ArgumentNullException.ThrowIfNull(config);
        var sb = new StringBuilder(256 + config.Peers.Count * 160);
        if (format == WgConfigFormat.ShowConf) WriteShowConf(sb, config, includePrivateKey, includePresharedKeys);
        else WriteWgQuick(sb, config, includePrivateKey, includePresharedKeys);
        return sb.ToString();
    }

    private static void WriteWgQuick(StringBuilder sb, WgConfig config, bool includePrivateKey, bool includePresharedKeys)
    {
        var i = config.Interface;
        sb.Append("[Interface]\n");
        if (includePrivateKey && i.PrivateKey is not null) Line(sb, "PrivateKey", i.PrivateKey);
        if (i.ListenPort is { } port) Line(sb, "ListenPort", port.ToString(CultureInfo.InvariantCulture));
        if (i.FwMark != 0) Line(sb, "FwMark", FwMark(i.FwMark));
        if (i.Address.Count > 0) Line(sb, "Address", Join(i.Address));
        if (i.Dns.Count > 0) Line(sb, "DNS", string.Join(", ", i.Dns));
        if (i.Mtu is { } mtu) Line(sb, "MTU", mtu.ToString(CultureInfo.InvariantCulture));
        foreach (var (k, v) in i.Extra) Line(sb, k, v);
        if (i.EgressAllow.Count > 0) Extension(sb, "", "EgressAllow", Join(i.EgressAllow));
        if (i.EgressDeny.Count > 0) Extension(sb, "", "EgressDeny", Join(i.EgressDeny));
        if (i.EgressUnprotected) Extension(sb, "", "EgressUnprotected", "true");
        if (i.PeerIsolation is { } isolation) Extension(sb, "", "PeerIsolation", isolation ? "true" : "false");
        foreach (var (tag, rules) in i.TagRules)
            foreach (var r in rules) Extension(sb, "", "TagAcl", $"{tag}: {r}");
        foreach (var p in config.Peers)
        {
            sb.Append('\n');
            // A disabled peer is written whole behind the prefix, so that wg-quick and wg(8) skip it.
            string pre = p.Disabled ? WgConfigParser.DisabledPrefix + " " : "";
            sb.Append(pre).Append("[Peer]\n");
            if (p.Name is not null) Extension(sb, pre, "Name", CheckLine(p.Name, "Name"));
            if (p.ExpiresAt is { } at)
                Extension(sb, pre, "ExpiresAt", at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture));
            if (p.Tags.Count > 0) Extension(sb, pre, "Tags", string.Join(", ", p.Tags));
            foreach (var r in p.Acl) Extension(sb, pre, "Acl", r.ToString());
            if (p.UploadLimit is { } up) Extension(sb, pre, "UploadLimit", Limit(up));
            if (p.DownloadLimit is { } down) Extension(sb, pre, "DownloadLimit", Limit(down));
            if (p.Quota is { } quota)
            {
                Extension(sb, pre, "Quota", $"{quota.Bytes.ToString(CultureInfo.InvariantCulture)} {quota.Period}");
                Extension(sb, pre, "QuotaUsed", p.QuotaUsed.ToString(CultureInfo.InvariantCulture));
                if (p.QuotaPeriodStart is { } since)
                    Extension(sb, pre, "QuotaPeriodStart", since.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            }
            if (p.DisabledReason is not null) Extension(sb, pre, "DisabledReason", CheckLine(p.DisabledReason, "DisabledReason"));
            PeerBody(sb, pre, p, includePresharedKeys);
            foreach (var (k, v) in p.Extra) { sb.Append(pre); Line(sb, k, v); }
        }
    }

    /// <summary>The layout of wg(8) showconf: ListenPort, FwMark, PrivateKey; peers separated by blank lines.</summary>
    private static void WriteShowConf(StringBuilder sb, WgConfig config, bool includePrivateKey, bool includePresharedKeys)
    {
        var i = config.Interface;
        sb.Append("[Interface]\n");
        if (i.ListenPort is { } port and > 0) Line(sb, "ListenPort", port.ToString(CultureInfo.InvariantCulture));
        if (i.FwMark != 0) Line(sb, "FwMark", FwMark(i.FwMark));
        if (includePrivateKey && i.PrivateKey is not null) Line(sb, "PrivateKey", i.PrivateKey);
        foreach (var p in config.Peers)
        {
            if (p.Disabled) continue;
            sb.Append("\n[Peer]\n");
            PeerBody(sb, "", p, includePresharedKeys);
        }
    }

    private static void PeerBody(StringBuilder sb, string pre, WgPeerSection p, bool includePresharedKey)
    {
        sb.Append(pre); Line(sb, "PublicKey", p.PublicKey.ToBase64());
        if (includePresharedKey && p.PresharedKey is { } psk) { sb.Append(pre); Line(sb, "PresharedKey", psk.ToBase64()); }
        if (p.AllowedIPs.Count > 0) { sb.Append(pre); Line(sb, "AllowedIPs", Join(p.AllowedIPs)); }
        if (p.Endpoint is not null) { sb.Append(pre); Line(sb, "Endpoint", CheckLine(p.Endpoint, "Endpoint")); }
        if (p.PersistentKeepalive > 0)
        {
            sb.Append(pre);
            Line(sb, "PersistentKeepalive", p.PersistentKeepalive.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static string Limit(Policy.RateLimit l) =>
        l.BurstBytes > 0 ? $"{l.BitsPerSecond.ToString(CultureInfo.InvariantCulture)} {l.BurstBytes.ToString(CultureInfo.InvariantCulture)}"
            : l.BitsPerSecond.ToString(CultureInfo.InvariantCulture);

    private static void Extension(StringBuilder sb, string pre, string key, string value) =>
        sb.Append(pre).Append(WgConfigParser.ExtensionPrefix).Append(' ').Append(key).Append(" = ").Append(value).Append('\n');

    private static void Line(StringBuilder sb, string key, string value) =>
        sb.Append(key).Append(" = ").Append(value).Append('\n');

    private static string FwMark(uint mark) => "0x" + mark.ToString("x", CultureInfo.InvariantCulture);

    private static string Join(List<IpPrefix> list)
    {
        var sb = new StringBuilder(list.Count * 20);
        for (int k = 0; k < list.Count; k++)
        {
            if (k > 0) sb.Append(", ");
            sb.Append(list[k].ToString());
        }
        return sb.ToString();
    }

    /// <summary>A value that would break out of its line (or start a comment) cannot be written faithfully.</summary>
    private static string CheckLine(string value, string what)
    {
        foreach (char c in value)
            if (char.IsControl(c))
                throw new ArgumentException($"{what} contains a control character and cannot be written to a config file.");
        return value;
    }
}
