using System.Globalization;
using System.Net;
using Flood;
using WgEngine.Crypto;

// Usage:
//   Flood --target 127.0.0.1:51820 --key <responder public key, base64> [--seconds 8] [--sockets 64] [--threads 1] [--window 2048] [--relay]
//       floods the responder with valid-mac1 initiations from many source ports; never longer than 10 s.
//       --relay also relays one real client through a port printed first ("relay-port N") and reports its handshake.
//   Flood --measure [--target ours|wggo] [--seconds 3] [--peers 1024] [--inflight 64] [--name whsXXXXXX]
//       responder handshake throughput over loopback, per second and per CPU-second: our engine in-process
//       (full handshakes and cookie replies) or a throw-away wireguard-go; never longer than 10 s per phase.
var opts = Args.Parse(args);
try
{
    if (opts.ContainsKey("measure"))
    {
        Measure.Run(opts.TryGetValue("target", out var t) && t != "" ? t : "ours", Args.Double(opts, "seconds", 3),
            Args.Int(opts, "peers", 1024), Args.Int(opts, "inflight", 64), opts.GetValueOrDefault("name"));
        return 0;
    }
    if (!opts.TryGetValue("target", out var target) || !opts.TryGetValue("key", out var key))
    {
        Console.Error.WriteLine("usage: Flood --target host:port --key <base64> [--seconds N<=10] [--sockets N] [--threads N] [--window N, 0 = open loop] [--relay] | --measure");
        return 2;
    }
    var targetEp = IPEndPoint.Parse(target);
    // --relay: also relay one real client (port printed first), to observe its handshake on the wire.
    using var relay = opts.ContainsKey("relay") ? new Relay(targetEp) : null;
    if (relay is not null) Console.WriteLine($"relay-port {relay.Port}");
    Console.Out.Flush();
    var result = Flooder.Run(targetEp, WgKey.Parse(key),
        TimeSpan.FromSeconds(Math.Min(Flooder.MaxSeconds, Args.Double(opts, "seconds", 8))),
        Args.Int(opts, "sockets", 64), Args.Int(opts, "threads", 1), Args.Int(opts, "window", 2048));
    string relayJson = relay is null ? "null" : string.Create(CultureInfo.InvariantCulture,
        $"{{\"initiations\":{relay.Initiations},\"firstInitiationHadMac2\":{(relay.FirstInitiationHadMac2 ? "true" : "false")},\"initiationsWithMac2\":{relay.InitiationsWithMac2},\"cookieReplies\":{relay.CookieReplies},\"responses\":{relay.Responses},\"initiationsAfterMac2BeforeResponse\":{relay.InitiationsAfterMac2BeforeResponse},\"firstMac2AtMs\":{relay.FirstMac2At:F1},\"firstResponseAtMs\":{relay.FirstResponseAt:F1}}}");
    // The last line is JSON, for the test that runs this.
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{{\"sent\":{result.Sent},\"cookieRepliesReceived\":{result.CookieReplies},\"seconds\":{result.Seconds:F3},\"sockets\":{result.Sockets},\"packetsPerSecond\":{result.Sent / result.Seconds:F0},\"relay\":{relayJson}}}"));
    return 0;
}
catch (Exception e) when (e is FormatException or ArgumentException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

internal static class Args
{
    public static Dictionary<string, string> Parse(string[] args)
    {
        var d = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{args[i]}'");
            string name = args[i][2..];
            bool hasValue = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
            d[name] = hasValue ? args[++i] : "";
        }
        return d;
    }

    public static int Int(Dictionary<string, string> d, string name, int dflt) =>
        d.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : dflt;
    public static double Double(Dictionary<string, string> d, string name, double dflt) =>
        d.TryGetValue(name, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : dflt;
}
