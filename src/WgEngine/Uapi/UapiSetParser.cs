using System.Globalization;
using System.Net;
using System.Net.Sockets;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Uapi;

/// <summary>
/// Parses the lines of a `set=1` request (https://www.wireguard.com/xplatform/) one at a time into a
/// <see cref="UapiSetRequest"/>, validating each value the way wireguard-go (device/uapi.go) does so
/// that bad input gets the same errno. Parsing stops at the first bad line; what came before stays in
/// <see cref="Request"/> and is applied, as wireguard-go applies lines as it reads them.
/// </summary>
internal sealed class UapiSetParser
{
    private UapiPeerChange? _peer;     // null while in the device section
    private bool _peerIgnored;         // after remove=true: later lines are checked but change nothing

    public UapiSetRequest Request { get; } = new();

    /// <summary>Why the last line failed (never contains a key value).</summary>
    public string? Error { get; private set; }

    /// <summary>Feeds one line (without its newline, not the blank terminator). Returns 0 or a negative errno.</summary>
    public int Feed(string line)
    {
        int eq = line.IndexOf('=');
        if (eq < 0) return Fail(UapiErrno.Protocol, "a line without '='");
        string key = line[..eq], value = line[(eq + 1)..];
        if (key == "public_key")
        {
            if (!KeyText.TryDecodeHex(value, out var pub)) return Fail(UapiErrno.Invalid, "public_key is not 64 hex digits");
            _peer = new UapiPeerChange(pub);
            _peerIgnored = false;
            Request.Peers.Add(_peer);
            return 0;
        }
        return _peer is null ? DeviceLine(key, value) : PeerLine(_peer, key, value);
    }

    private int DeviceLine(string key, string value)
    {
        switch (key)
        {
            case "private_key":
                if (!KeyText.TryDecodeHex(value, out var raw)) return Fail(UapiErrno.Invalid, "private_key is not 64 hex digits");
                Request.PrivateKey?.Dispose();
                Request.PrivateKey = null;
                Request.ClearPrivateKey = raw.IsZero;
                if (!raw.IsZero)
                {
                    Span<byte> b = stackalloc byte[WgKey.Size];
                    raw.CopyTo(b);
                    Request.PrivateKey = WgPrivateKey.FromBytes(b);
                    b.Clear();
                }
                return 0;
            case "listen_port":
                if (!TryParseUInt(value, ushort.MaxValue, out var port)) return Fail(UapiErrno.Invalid, "listen_port is not 0-65535");
                Request.ListenPort = (int)port;
                return 0;
            case "fwmark":
                if (!TryParseUInt(value, uint.MaxValue, out var mark)) return Fail(UapiErrno.Invalid, "fwmark is not a 32-bit number");
                Request.Fwmark = (uint)mark;
                return 0;
            case "replace_peers":
                if (value != "true") return Fail(UapiErrno.Invalid, "replace_peers must be 'true'");
                Request.ReplacePeers = true;
                return 0;
            default:
                return Fail(UapiErrno.Invalid, $"unknown device key '{Printable(key)}'");
        }
    }

    private int PeerLine(UapiPeerChange peer, string key, string value)
    {
        switch (key)
        {
            case "update_only":
                if (value != "true") return Fail(UapiErrno.Invalid, "update_only must be 'true'");
                if (!_peerIgnored) peer.UpdateOnly = true;
                return 0;
            case "remove":
                if (value != "true") return Fail(UapiErrno.Invalid, "remove must be 'true'");
                peer.Remove = true;
                _peerIgnored = true;
                return 0;
            case "preshared_key":
                if (!KeyText.TryDecodeHex(value, out var psk)) return Fail(UapiErrno.Invalid, "preshared_key is not 64 hex digits");
                if (!_peerIgnored) peer.PresharedKey = psk;
                return 0;
            case "endpoint":
                if (!TryParseEndpoint(value, out var ep)) return Fail(UapiErrno.Invalid, $"endpoint '{Printable(value)}' is not ip:port");
                if (!_peerIgnored) peer.Endpoint = ep;
                return 0;
            case "persistent_keepalive_interval":
                if (!TryParseUInt(value, ushort.MaxValue, out var secs)) return Fail(UapiErrno.Invalid, "persistent_keepalive_interval is not 0-65535");
                if (!_peerIgnored) peer.PersistentKeepalive = (int)secs;
                return 0;
            case "replace_allowed_ips":
                if (value != "true") return Fail(UapiErrno.Invalid, "replace_allowed_ips must be 'true'");
                if (!_peerIgnored) { peer.ReplaceAllowedIPs = true; peer.AllowedIPs.Clear(); }
                return 0;
            case "allowed_ip":
                if (!TryParsePrefix(value, out var prefix)) return Fail(UapiErrno.Invalid, $"allowed_ip '{Printable(value)}' is not a prefix");
                if (!_peerIgnored && !peer.AllowedIPs.Contains(prefix)) peer.AllowedIPs.Add(prefix);
                return 0;
            case "protocol_version":
                return value == "1" ? 0 : Fail(UapiErrno.Invalid, "protocol_version must be 1");
            default:
                return Fail(UapiErrno.Invalid, $"unknown peer key '{Printable(key)}'");
        }
    }

    private int Fail(int errno, string why)
    {
        Error = why;
        return errno;
    }

    /// <summary>Decimal digits only (like Go's strconv.ParseUint base 10: no sign, no spaces).</summary>
    internal static bool TryParseUInt(string s, ulong max, out ulong value)
    {
        value = 0;
        if (s.Length is 0 or > 20) return false;
        foreach (char c in s)
        {
            if (c is < '0' or > '9') return false;
            if (value > (max - (ulong)(c - '0')) / 10) return false;
            value = value * 10 + (ulong)(c - '0');
        }
        return true;
    }

    /// <summary>"a.b.c.d:port" or "[v6]:port", literal addresses only (Go's netip.ParseAddrPort).</summary>
    internal static bool TryParseEndpoint(string s, out IPEndPoint? endpoint)
    {
        endpoint = null;
        int colon = s.LastIndexOf(':');
        if (colon <= 0) return false;
        string host = s[..colon];
        if (!TryParseUInt(s[(colon + 1)..], ushort.MaxValue, out var port)) return false;
        IPAddress? ip;
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
            if (!host.Contains(':') || host.Contains('%') || !IPAddress.TryParse(host, out ip)) return false;
        }
        else if (!TryParseV4(host, out ip)) return false;
        endpoint = new IPEndPoint(ip!, (int)port);
        return true;
    }

    /// <summary>"addr/bits" with a literal address (Go's netip.ParsePrefix); host bits may be set.</summary>
    internal static bool TryParsePrefix(string s, out IpPrefix prefix)
    {
        prefix = default;
        int slash = s.IndexOf('/');
        if (slash <= 0) return false;
        string host = s[..slash], bits = s[(slash + 1)..];
        IPAddress? ip;
        if (host.Contains(':'))
        {
            if (host.Contains('%') || !IPAddress.TryParse(host, out ip)) return false;
        }
        else if (!TryParseV4(host, out ip)) return false;
        int max = ip!.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        // Leading zeros in the length are accepted: the wireguard-go we test against (0.0.20220316) does.
        if (!TryParseUInt(bits, (ulong)max, out var n)) return false;
        prefix = new IpPrefix(ip, (int)n);
        return true;
    }

    /// <summary>Exactly four decimal octets without leading zeros.</summary>
    private static bool TryParseV4(string s, out IPAddress? ip)
    {
        ip = null;
        var parts = s.Split('.');
        if (parts.Length != 4) return false;
        Span<byte> b = stackalloc byte[4];
        for (int i = 0; i < 4; i++)
        {
            var p = parts[i];
            if (p.Length > 1 && p[0] == '0') return false;
            if (!TryParseUInt(p, 255, out var v)) return false;
            b[i] = (byte)v;
        }
        ip = new IPAddress(b);
        return true;
    }

    /// <summary>For error messages: at most 32 printable ASCII characters of the input.</summary>
    private static string Printable(string s)
    {
        var t = s.Length > 32 ? s[..32] : s;
        return string.Create(t.Length, t, (span, src) =>
        {
            for (int i = 0; i < src.Length; i++) span[i] = src[i] is >= ' ' and <= '~' ? src[i] : '?';
        });
    }
}
