using System.Globalization;
using System.Net;
using WgEngine.Crypto;
using WgEngine.Net;

using WgEngine.Contracts;

namespace WgEngine.Uapi;

/// <summary>
/// Parses the body of a `get=1` answer into a device and its peers. The private key, when present,
/// is returned as a WgPrivateKey the caller owns (and must dispose).
/// </summary>
internal static class UapiGetParser
{
    public sealed class Result
    {
        public WgPrivateKey? PrivateKey { get; set; }
        public int ListenPort { get; set; }
        public uint Fwmark { get; set; }
        public List<DevicePeer> Peers { get; } = new();
    }

    /// <summary>Unknown keys are skipped (other implementations add their own); malformed values throw FormatException.</summary>
    public static Result Parse(string body)
    {
        var r = new Result();
        DevicePeer? peer = null;
        long sec = 0;
        foreach (var raw in body.Split('\n'))
        {
            if (raw.Length == 0) continue;
            int eq = raw.IndexOf('=');
            if (eq < 0) throw new FormatException("A UAPI get line without '='.");
            string key = raw[..eq], value = raw[(eq + 1)..];
            switch (key)
            {
                case "private_key":
                    r.PrivateKey?.Dispose();
                    r.PrivateKey = PrivateKey(Hex(value));
                    break;
                case "listen_port": r.ListenPort = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "fwmark": r.Fwmark = uint.Parse(value, CultureInfo.InvariantCulture); break;
                case "public_key":
                    peer = new DevicePeer { PublicKey = Hex(value) };
                    r.Peers.Add(peer);
                    break;
                case "preshared_key" when peer is not null:
                    var psk = Hex(value);
                    peer.PresharedKey = psk.IsZero ? null : psk;
                    break;
                case "endpoint" when peer is not null:
                    peer.Endpoint = UapiSetParser.TryParseEndpoint(value, out var ep) ? ep : throw new FormatException("Bad endpoint in UAPI get.");
                    break;
                case "last_handshake_time_sec" when peer is not null:
                    sec = long.Parse(value, CultureInfo.InvariantCulture);
                    break;
                case "last_handshake_time_nsec" when peer is not null:
                    long nsec = long.Parse(value, CultureInfo.InvariantCulture);
                    peer.LastHandshake = sec == 0 && nsec == 0 ? null
                        : DateTimeOffset.UnixEpoch.AddTicks(sec * TimeSpan.TicksPerSecond + nsec / 100);
                    break;
                case "tx_bytes" when peer is not null: peer.TxBytes = long.Parse(value, CultureInfo.InvariantCulture); break;
                case "rx_bytes" when peer is not null: peer.RxBytes = long.Parse(value, CultureInfo.InvariantCulture); break;
                case "persistent_keepalive_interval" when peer is not null:
                    peer.PersistentKeepalive = int.Parse(value, CultureInfo.InvariantCulture);
                    break;
                case "allowed_ip" when peer is not null:
                    peer.AllowedIPs.Add(UapiSetParser.TryParsePrefix(value, out var p) ? p : throw new FormatException("Bad allowed_ip in UAPI get."));
                    break;
            }
        }
        return r;
    }

    private static WgPrivateKey? PrivateKey(WgKey raw)
    {
        if (raw.IsZero) return null;
        Span<byte> b = stackalloc byte[WgKey.Size];
        raw.CopyTo(b);
        var key = WgPrivateKey.FromBytes(b);
        b.Clear();
        return key;
    }

    private static WgKey Hex(string value) =>
        KeyText.TryDecodeHex(value, out var k) ? k : throw new FormatException("A UAPI key is not 64 hex digits.");
}
