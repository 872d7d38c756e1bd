using System.Globalization;
using System.Text.RegularExpressions;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Config;

/// <summary>
/// Reads wg-quick and `wg showconf` text. Keys and section names are case-insensitive (as wg(8) reads
/// them), '#' starts a comment, lists are comma-separated and may repeat, CRLF is accepted.
/// Every error is a WgException(InvalidData, "ConfigParseError") naming the source and the line; the
/// value of a PrivateKey or PresharedKey line never appears in a message.
/// </summary>
public static partial class WgConfigParser
{
    public const string ErrorId = "ConfigParseError";
    /// <summary>Prefix of every line of a disabled [Peer] section (wg-quick sees only comments).</summary>
    public const string DisabledPrefix = "#~";
    /// <summary>Prefix of an extension line ("#! Name = alice").</summary>
    public const string ExtensionPrefix = "#!";

    private static readonly HashSet<string> KnownKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "PrivateKey", "ListenPort", "FwMark", "Address", "DNS", "MTU", "Table", "PreUp", "PostUp", "PreDown", "PostDown",
        "SaveConfig", "PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive",
    };

    public static WgConfig ParseFile(string path) => Parse(File.ReadAllText(path), path);

    /// <param name="source">Named in error messages: a file path, or e.g. "-Content".</param>
    public static WgConfig Parse(string text, string source = "<text>")
    {
        ArgumentNullException.ThrowIfNull(text);
        var state = new State(source);
        int lineNo = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNo++;
            state.LineNo = lineNo;
            var line = rawLine.TrimEnd('\r').Trim();
            bool disabled = false;
            if (line.StartsWith(DisabledPrefix, StringComparison.Ordinal))
            {
                disabled = true;
                line = line[DisabledPrefix.Length..].Trim();
            }
            state.ProcessLine(line, disabled);
        }
        state.Finish();
        return state.Config;
    }

    private sealed class State(string source)
    {
        public WgConfig Config { get; } = new();
        public int LineNo;
        private bool _inInterface, _sawInterface;
        private WgPeerSection? _peer;
        private bool _peerHasKey;
        private readonly Dictionary<WgKey, int> _peerLines = new();

        public void ProcessLine(string line, bool disabled)
        {
            if (line.StartsWith(ExtensionPrefix, StringComparison.Ordinal))
            {
                if (_inInterface && !disabled)
                {
                    InterfaceExtension(line[ExtensionPrefix.Length..]);
                    return;
                }
                if (_peer is null || _peer.Disabled != disabled)
                    throw Error("an extension line ('#!') belongs inside an [Interface] or [Peer] section.");
                Extension(line[ExtensionPrefix.Length..]);
                return;
            }
            int hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash].TrimEnd();
            if (line.Length == 0) return;

            if (line[0] == '[')
            {
                Header(line, disabled);
                return;
            }
            if (_peer is not null && _peer.Disabled != disabled)
                throw Error(disabled
                    ? $"a '{DisabledPrefix}' line belongs inside a disabled [Peer] section (its header must be '{DisabledPrefix} [Peer]')."
                    : $"every line of a disabled [Peer] section must start with '{DisabledPrefix}'; start a new section first.");
            if (disabled && _peer is null)
                throw Error($"a '{DisabledPrefix}' line belongs inside a disabled [Peer] section.");

            int eq = line.IndexOf('=');
            if (eq <= 0)
                throw Error("expected 'Key = Value'.");   // the line itself is not echoed: it may be a key
            var key = line[..eq].Trim();
            var value = line[(eq + 1)..].Trim();
            if (!KeyPattern().IsMatch(key))
                throw Error("expected 'Key = Value' with a key made of letters and digits.");
            if (value.Length == 0 && !KnownKeys.Contains(key))   // e.g. a pasted base64 key ending in '='
                throw Error("expected 'Key = Value'; this line has no value.");
            if (_inInterface) InterfaceKey(key, value);
            else if (_peer is not null) PeerKey(key, value);
            else throw Error($"'{key}' appears before any [Interface] or [Peer] section.");
        }

        private void Header(string line, bool disabled)
        {
            FinishPeer();
            if (line.Equals("[Interface]", StringComparison.OrdinalIgnoreCase))
            {
                if (disabled) throw Error("only a [Peer] section can be disabled.");
                if (_sawInterface) throw Error("a second [Interface] section; a file has exactly one.");
                _sawInterface = _inInterface = true;
                Config.Interface.Line = LineNo;
                return;
            }
            if (line.Equals("[Peer]", StringComparison.OrdinalIgnoreCase))
            {
                _inInterface = false;
                _peer = new WgPeerSection { Line = LineNo, Disabled = disabled };
                _peerHasKey = false;
                return;
            }
            throw Error($"unknown section {Clip(line)}; expected [Interface] or [Peer].");
        }

        private void InterfaceKey(string key, string value)
        {
            var i = Config.Interface;
            switch (key.ToLowerInvariant())
            {
                case "privatekey":
                    if (i.PrivateKey is not null) throw Error("PrivateKey is given twice.");
                    Span<byte> b = stackalloc byte[WgKey.Size];
                    bool ok = KeyText.TryDecodeBase64(value, b);
                    b.Clear();
                    if (!ok) throw Error("PrivateKey is not a valid key (44 characters of base64 for 32 bytes).");
                    i.PrivateKey = value;
                    break;
                case "listenport":
                    i.ListenPort = Port(value, "ListenPort");
                    break;
                case "fwmark":
                    i.FwMark = FwMark(value);
                    break;
                case "address":
                    foreach (var part in List(value)) i.Address.Add(Prefix(part, "Address"));
                    break;
                case "dns":
                    i.Dns.AddRange(List(value));
                    break;
                case "mtu":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int mtu) || mtu is < 576 or > 65535)
                        throw Error($"MTU '{Clip(value)}' is not a number in 576-65535.");
                    i.Mtu = mtu;
                    break;
                default:
                    i.Extra.Add(new(key, value));   // Table, hooks, SaveConfig and keys of later versions
                    break;
            }
        }

        private void PeerKey(string key, string value)
        {
            var p = _peer!;
            switch (key.ToLowerInvariant())
            {
                case "publickey":
                    if (_peerHasKey) throw Error("PublicKey is given twice in this [Peer] section.");
                    if (!WgKey.TryParse(value, out var pub)) throw Error($"PublicKey '{Clip(value)}' is not a valid key.");
                    p.PublicKey = pub;
                    _peerHasKey = true;
                    break;
                case "presharedkey":
                    if (!WgKey.TryParse(value, out var psk)) throw Error("PresharedKey is not a valid key (44 characters of base64 for 32 bytes).");
                    p.PresharedKey = psk.IsZero ? null : psk;
                    break;
                case "allowedips":
                    foreach (var part in List(value)) p.AllowedIPs.Add(Prefix(part, "AllowedIPs"));
                    break;
                case "endpoint":
                    if (!EndpointPattern().IsMatch(value) || !int.TryParse(value[(value.LastIndexOf(':') + 1)..], out int port) || port is < 1 or > 65535)
                        throw Error($"Endpoint '{Clip(value)}' is not 'host:port' (IPv6 as '[addr]:port').");
                    p.Endpoint = value;
                    break;
                case "persistentkeepalive":
                    if (value.Equals("off", StringComparison.OrdinalIgnoreCase)) { p.PersistentKeepalive = 0; break; }
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int ka) || ka > 65535)
                        throw Error($"PersistentKeepalive '{Clip(value)}' is not 'off' or a number of seconds in 0-65535.");
                    p.PersistentKeepalive = ka;
                    break;
                default:
                    p.Extra.Add(new(key, value));
                    break;
            }
        }

        private void InterfaceExtension(string body)
        {
            int eq = body.IndexOf('=');
            if (eq <= 0) throw Error("expected '#! Key = Value'.");
            var key = body[..eq].Trim();
            var value = body[(eq + 1)..].Trim();
            switch (key.ToLowerInvariant())
            {
                case "egressallow":
                    AddPrefixes(Config.Interface.EgressAllow, value, "EgressAllow");
                    break;
                case "egressdeny":
                    AddPrefixes(Config.Interface.EgressDeny, value, "EgressDeny");
                    break;
                case "peerisolation":
                    if (!bool.TryParse(value, out bool isolation))
                        throw Error($"PeerIsolation '{Clip(value)}' is not true or false.");
                    Config.Interface.PeerIsolation = isolation;
                    break;
                case "tagacl":
                    int colon = value.IndexOf(':');
                    var tag = colon > 0 ? value[..colon].Trim() : "";
                    if (!PeerTag.IsValid(tag)) throw Error($"TagAcl '{Clip(value)}' is not 'tag: rule' with a tag of letters, digits, '-', '_' or '.'.");
                    if (!Config.Interface.TagRules.TryGetValue(tag, out var list)) Config.Interface.TagRules[tag] = list = new();
                    list.AddRange(Rule(value[(colon + 1)..]));
                    break;
                case "egressunprotected":
                    if (!bool.TryParse(value, out bool unprotected))
                        throw Error($"EgressUnprotected '{Clip(value)}' is not true or false.");
                    Config.Interface.EgressUnprotected = unprotected;
                    break;
                default:
                    break;   // extension keys of later versions are ignored, not fatal
            }
        }

        private Policy.RateLimit Limit(string value, string key)
        {
            var parts = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length is 1 or 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long bps)
                && bps >= Policy.RateLimit.MinBitsPerSecond && bps <= Policy.RateLimit.MaxBitsPerSecond)
            {
                long burst = 0;
                if (parts.Length == 1 || (long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out burst) && burst <= 1L << 32))
                    return new Policy.RateLimit(bps, burst);
            }
            throw Error($"{key} '{Clip(value)}' is not '<bits per second> [<burst bytes>]'.");
        }

        private IReadOnlyList<Policy.AclRule> Rule(string text) =>
            Policy.AclRule.TryParse(text.Trim(), out var rules, out var error) ? rules : throw Error(error);

        private void AddPrefixes(List<IpPrefix> into, string value, string key)
        {
            foreach (var part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!IpPrefix.TryParse(part, out var prefix))
                    throw Error($"{key} '{Clip(part)}' is not a CIDR prefix (e.g. 10.0.0.0/8).");
                into.Add(prefix);
            }
        }

        private void Extension(string body)
        {
            int eq = body.IndexOf('=');
            if (eq <= 0) throw Error("expected '#! Key = Value'.");
            var key = body[..eq].Trim();
            var value = body[(eq + 1)..].Trim();
            switch (key.ToLowerInvariant())
            {
                case "name":
                    _peer!.Name = value.Length == 0 ? null : value;
                    break;
                case "uploadlimit":
                    _peer!.UploadLimit = Limit(value, "UploadLimit");
                    break;
                case "downloadlimit":
                    _peer!.DownloadLimit = Limit(value, "DownloadLimit");
                    break;
                case "quota":
                    var q = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (q.Length != 2 || !long.TryParse(q[0], NumberStyles.None, CultureInfo.InvariantCulture, out long qb) || qb <= 0
                        || !Enum.TryParse<Policy.QuotaPeriod>(q[1], ignoreCase: true, out var period) || !Enum.IsDefined(period) || int.TryParse(q[1], out _))
                        throw Error($"Quota '{Clip(value)}' is not '<bytes> <Total|Day|Week|Month>'.");
                    _peer!.Quota = new Policy.DataQuota(qb, period);
                    break;
                case "quotaused":
                    if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long used))
                        throw Error($"QuotaUsed '{Clip(value)}' is not a number of bytes.");
                    _peer!.QuotaUsed = used;
                    break;
                case "quotaperiodstart":
                    if (!DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var since))
                        throw Error($"QuotaPeriodStart '{Clip(value)}' is not a date and time (ISO 8601).");
                    _peer!.QuotaPeriodStart = since;
                    break;
                case "disabledreason":
                    _peer!.DisabledReason = value.Length == 0 ? null : value;
                    break;
                case "acl":
                    _peer!.Acl.AddRange(Rule(value));
                    break;
                case "tags":
                    foreach (var t in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (!PeerTag.IsValid(t)) throw Error($"Tag '{Clip(t)}' is not letters, digits, '-', '_' or '.' (at most 32).");
                        _peer!.Tags.Add(t);
                    }
                    break;
                case "expiresat":
                    if (!DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                        throw Error($"ExpiresAt '{Clip(value)}' is not a date and time (ISO 8601, e.g. 2026-12-31T00:00:00Z).");
                    _peer!.ExpiresAt = at;
                    break;
                default:
                    break;   // extension keys of later versions are ignored, not fatal
            }
        }

        private void FinishPeer()
        {
            if (_peer is null) return;
            var p = _peer;
            _peer = null;
            int current = LineNo;
            LineNo = p.Line;   // errors about a whole section name its header
            if (!_peerHasKey) throw Error("this [Peer] section has no PublicKey.");
            if (_peerLines.TryGetValue(p.PublicKey, out int first))
                throw Error($"peer {p.PublicKey} already appears in the [Peer] section at line {first}.");
            _peerLines.Add(p.PublicKey, p.Line);
            Config.Peers.Add(p);
            LineNo = current;
        }

        public void Finish() => FinishPeer();

        private int Port(string value, string what)
        {
            if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
                throw Error($"{what} '{Clip(value)}' is not a port number in 0-65535.");
            return port;
        }

        private uint FwMark(string value)
        {
            if (value.Equals("off", StringComparison.OrdinalIgnoreCase)) return 0;
            bool hex = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
            if (hex ? uint.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint m)
                    : uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out m))
                return m;
            throw Error($"FwMark '{Clip(value)}' is not 'off' or a 32-bit number.");
        }

        /// <summary>Host bits are kept as written (Address 10.8.0.1/24 names the interface's own address).</summary>
        private IpPrefix Prefix(string text, string what) =>
            IpPrefix.TryParse(text, out var p) ? p
                : throw Error($"{what} '{Clip(text)}' is not an address/prefix such as 10.8.0.2/32.");

        private static IEnumerable<string> List(string value) =>
            value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

        private static string Clip(string s) => s.Length <= 60 ? s : s[..57] + "...";

        private WgException Error(string what) =>
            new(WgErrorKind.InvalidData, ErrorId, $"{source}, line {LineNo}: {what}");
    }

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9]*$")]
    private static partial Regex KeyPattern();

    [GeneratedRegex(@"^(\[[0-9A-Fa-f:.%a-zA-Z]+\]|[^:\[\]\s]+):[0-9]{1,5}$")]
    private static partial Regex EndpointPattern();
}
