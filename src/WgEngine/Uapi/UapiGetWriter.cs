using System.Globalization;
using System.Net;
using System.Text;

namespace WgEngine.Uapi;

/// <summary>Formats a <see cref="UapiDeviceState"/> as the body of a `get=1` answer (keys in wireguard-go's order).</summary>
internal static class UapiGetWriter
{
    private const string ZeroKeyHex = "0000000000000000000000000000000000000000000000000000000000000000";

    public static void Write(StringBuilder sb, UapiDeviceState state)
    {
        var inv = CultureInfo.InvariantCulture;
        if (state.PrivateKey is { } key) sb.Append("private_key=").Append(key.ExportHex()).Append('\n');
        if (state.ListenPort != 0) sb.Append(inv, $"listen_port={state.ListenPort}\n");
        if (state.Fwmark != 0) sb.Append(inv, $"fwmark={state.Fwmark}\n");
        foreach (var p in state.Peers)
        {
            sb.Append("public_key=").Append(p.PublicKey.ToHex()).Append('\n');
            sb.Append("preshared_key=").Append(p.PresharedKey is { } psk ? psk.ToHex() : ZeroKeyHex).Append('\n');
            sb.Append("protocol_version=1\n");
            if (p.Endpoint is { } ep) sb.Append("endpoint=").Append(FormatEndpoint(ep)).Append('\n');
            long sec = 0, nsec = 0;
            if (p.LastHandshake is { } t)
            {
                long ticks = t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
                sec = ticks / TimeSpan.TicksPerSecond;
                nsec = ticks % TimeSpan.TicksPerSecond * 100;
            }
            sb.Append(inv, $"last_handshake_time_sec={sec}\n");
            sb.Append(inv, $"last_handshake_time_nsec={nsec}\n");
            sb.Append(inv, $"tx_bytes={p.TxBytes}\n");
            sb.Append(inv, $"rx_bytes={p.RxBytes}\n");
            sb.Append(inv, $"persistent_keepalive_interval={p.PersistentKeepalive}\n");
            foreach (var a in p.AllowedIPs) sb.Append("allowed_ip=").Append(a.ToString()).Append('\n');
        }
    }

    /// <summary>"1.2.3.4:51820" or "[::1]:51820", IPv4-mapped IPv6 shown as IPv4.</summary>
    public static string FormatEndpoint(IPEndPoint ep)
    {
        var ip = ep.Address.IsIPv4MappedToIPv6 ? ep.Address.MapToIPv4() : ep.Address;
        return ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{ip}]:{ep.Port}"
            : $"{ip}:{ep.Port}";
    }
}
