using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace WgPowerShell.Formatting;

/// <summary>How a client reaches the gateway: parsing -Endpoint and guessing one from this host's addresses.</summary>
internal static class ClientEndpoint
{
    public static bool TryNormalize(string text, int defaultPort, out string endpoint)
    {
        endpoint = "";
        text = text.Trim();
        string host; int port = defaultPort;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0 || !IPAddress.TryParse(text[1..close], out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6) return false;
            host = $"[{v6}]";
            var rest = text[(close + 1)..];
            if (rest.Length > 0 && (!rest.StartsWith(':') || !TryPort(rest[1..], out port))) return false;
        }
        else if (IPAddress.TryParse(text, out var bare) && bare.AddressFamily == AddressFamily.InterNetworkV6)
            host = $"[{bare}]";
        else
        {
            int colon = text.LastIndexOf(':');
            host = colon < 0 ? text : text[..colon];
            if (colon >= 0 && !TryPort(text[(colon + 1)..], out port)) return false;
            if (!IsHostName(host)) return false;
        }
        endpoint = $"{host}:{port}";
        return true;
    }

    /// <summary>A DNS name or dotted IPv4: letters, digits, '-', '.', nothing that could end a config line.</summary>
    public static bool IsHostName(string s) =>
        s.Length is > 0 and <= 253 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.') && !s.StartsWith('.') && !s.StartsWith('-');

    private static bool TryPort(string s, out int port) => int.TryParse(s, out port) && port is > 0 and <= 65535;

    /// <summary>A non-loopback, non-link-local unicast address of an interface that is up, IPv4 first.</summary>
    public static string Guess(int port)
    {
        IPAddress? v4 = null, v6 = null;
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback) continue;
                foreach (var u in nic.GetIPProperties().UnicastAddresses)
                {
                    var a = u.Address;
                    if (IPAddress.IsLoopback(a) || a.IsIPv6LinkLocal || a.IsIPv6Multicast) continue;
                    if (a.AddressFamily == AddressFamily.InterNetwork && !a.ToString().StartsWith("169.254.", StringComparison.Ordinal)) v4 ??= a;
                    else if (a.AddressFamily == AddressFamily.InterNetworkV6) v6 ??= a;
                }
            }
        }
        catch (NetworkInformationException) { }
        var pick = v4 ?? v6 ?? IPAddress.Loopback;
        return new IPEndPoint(pick, port).ToString();
    }
}
