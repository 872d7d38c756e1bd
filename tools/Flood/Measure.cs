using System.Globalization;
using System.Net;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;

namespace Flood;

/// <summary>
/// Responder handshake throughput over UDP loopback, for our engine (in-process) or for a real
/// wireguard-go (<see cref="WgGoTarget"/>), driven the same way by <see cref="HandshakeLoad"/>: real
/// initiations from configured peers (valid mac1), at most <c>inFlight</c> unanswered, a completed
/// handshake being a response received. Timed by CPU from /proc: for wireguard-go its whole process
/// (all threads); for ours the device's threads (wg-*: receive, handshake, crypto workers) and, as the
/// per-core figure of the one thread that does handshakes, wg-handshake alone.
/// Ours also measures cookie replies (device forced under load: no DH at all).
/// </summary>
internal static class Measure
{
    /// <summary>Initiations are prepared for at most this rate (each peer's timestamps must grow).</summary>
    private const int MaxRate = 16_000;

    public static void Run(string target, double seconds, int peerCount, int inFlight, string? name = null)
    {
        seconds = Math.Clamp(seconds, 0.5, 10);
        // wireguard-go (QueueHandshakeSize 1024) goes under load, answering with cookies, at 128 queued.
        inFlight = Math.Clamp(inFlight, 1, 1024);
        var gwKey = WgPrivateKey.Generate();
        Span<byte> gwPub = stackalloc byte[32];
        gwKey.PublicKey.CopyTo(gwPub);
        var responder = gwPub.ToArray();

        // Round 0 warms up (JIT, our static-static cache); peers take turns, so each one's initiations
        // are >= peerCount / MaxRate apart (over wireguard-go's and our 20 ms) with growing timestamps.
        int rounds = 1 + Math.Max(1, (int)Math.Ceiling(MaxRate * seconds / peerCount));
        var peers = new (byte[] Priv, byte[] Pub)[peerCount];
        for (int i = 0; i < peerCount; i++) peers[i] = Initiations.NewKeyPair();
        var messages = new byte[rounds * peerCount][];
        var t0 = DateTimeOffset.UtcNow;
        Parallel.For(0, messages.Length, i =>
        {
            int round = i / peerCount, p = i % peerCount;
            messages[i] = Initiations.Create(responder, peers[p].Priv, peers[p].Pub, t0.AddSeconds(round), (uint)i);
        });
        Console.WriteLine($"prepared {messages.Length} initiations from {peerCount} peers; target {target}, {seconds} s, {inFlight} in flight");

        if (target == "wggo") RunWgGo(gwKey, peers, messages, seconds, inFlight, name);
        else if (target == "ours") RunOurs(gwKey, peers, messages, seconds, inFlight);
        else throw new ArgumentException("--target is ours or wggo");
    }

    private static void RunWgGo(WgPrivateKey key, (byte[] Priv, byte[] Pub)[] peers, byte[][] messages, double seconds, int inFlight, string? name)
    {
        using var wg = new WgGoTarget(key, peers, name);
        using var load = new HandshakeLoad(wg.Endpoint);
        var warm = load.Run(messages, 0, peers.Length, 10, inFlight, cycle: false);
        if (warm.Responses == 0) throw new InvalidOperationException("wireguard-go answered none of the warm-up initiations");
        double x1 = Calibration.X25519Microseconds();
        double cpu0 = ProcCpu.Process(wg.Pid);
        var r = load.Run(messages, peers.Length, messages.Length, seconds, inFlight, cycle: false);
        double cpu = ProcCpu.Process(wg.Pid) - cpu0;
        double x25519 = (x1 + Calibration.X25519Microseconds()) / 2;
        Report("wireguard-go full handshakes", r, cpu, "process");
        Json("wggo", r, cpu, double.NaN, double.NaN, x25519);
    }

    private static void RunOurs(WgPrivateKey key, (byte[] Priv, byte[] Pub)[] peers, byte[][] messages, double seconds, int inFlight)
    {
        HandshakeLoad.Result full;
        double cpu, hsCpu, x1;
        using (var device = NewDevice(key, peers, threshold: int.MaxValue))
        using (var load = new HandshakeLoad(new IPEndPoint(IPAddress.Loopback, device.ListenPort)))
        {
            load.Run(messages, 0, peers.Length, 10, inFlight, cycle: false);
            x1 = Calibration.X25519Microseconds();
            double all0 = ProcCpu.OwnThreads("wg-"), hs0 = ProcCpu.OwnThreads("wg-handshake");
            full = load.Run(messages, peers.Length, messages.Length, seconds, inFlight, cycle: false);
            cpu = ProcCpu.OwnThreads("wg-") - all0;
            hsCpu = ProcCpu.OwnThreads("wg-handshake") - hs0;
        }
        double x25519 = (x1 + Calibration.X25519Microseconds()) / 2;
        Report("ours full handshakes (never under load)", full, cpu, "device threads");
        Report("ours full handshakes (never under load)", full, hsCpu, "handshake thread");

        double cookiePerCpu;
        using (var device = NewDevice(key, peers, threshold: 0))
        using (var load = new HandshakeLoad(new IPEndPoint(IPAddress.Loopback, device.ListenPort)))
        {
            load.Run(messages, 0, peers.Length, 10, inFlight, cycle: false);
            double hs0 = ProcCpu.OwnThreads("wg-handshake");
            var cookie = load.Run(messages, 0, messages.Length, Math.Min(seconds, 3), inFlight, cycle: true);
            double c = ProcCpu.OwnThreads("wg-handshake") - hs0;
            Report("ours cookie replies (always under load)", cookie, c, "handshake thread");
            cookiePerCpu = cookie.CookieReplies / c;
        }
        Json("ours", full, cpu, hsCpu, cookiePerCpu, x25519);
    }

    private static WgDevice NewDevice(WgPrivateKey key, (byte[] Priv, byte[] Pub)[] peers, int threshold)
    {
        var device = new WgDevice(key, new UdpBind(0, IPAddress.Loopback), new DeviceOptions { Workers = 1, HandshakeLoadThreshold = threshold });
        for (int i = 0; i < peers.Length; i++)
            device.AddPeer(new PeerConfig
            {
                PublicKey = new WgKey(peers[i].Pub),
                AllowedIPs = [IpPrefix.Parse($"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32")],
            });
        device.Start();
        return device;
    }

    private static void Report(string what, HandshakeLoad.Result r, double cpu, string cpuOf)
    {
        long done = r.Responses + r.CookieReplies;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what}: {r.Responses} responses + {r.CookieReplies} cookie replies to {r.Sent} sent ({r.Lost} lost) in {r.Seconds:F2} s = {done / r.Seconds:F0}/s; {cpuOf} CPU {cpu:F2} s = {done / cpu:F0} per CPU-second ({1e6 * cpu / done:F1} us each)"));
    }

    /// <param name="x25519Us">CPU time of one X25519 on this host in the same run (<see cref="Calibration"/>).</param>
    private static void Json(string target, HandshakeLoad.Result r, double cpu, double hsCpu, double cookiePerCpu, double x25519Us)
    {
        double perHandshakeUs = 1e6 * cpu / r.Responses;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"same run: one X25519 took {x25519Us:F1} us of CPU, so a handshake cost {perHandshakeUs / x25519Us:F2} X25519 operations"));
        static string N(double v) => double.IsFinite(v) ? v.ToString("F0", CultureInfo.InvariantCulture) : "null";
        // The last line is JSON, for bench/e2e/handshake-rate.ps1.
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"target\":\"{target}\",\"sent\":{r.Sent},\"responses\":{r.Responses},\"cookieReplies\":{r.CookieReplies},\"lost\":{r.Lost},\"seconds\":{r.Seconds:F3},\"cpuSeconds\":{cpu:F2},\"perSecond\":{N(r.Responses / r.Seconds)},\"perCpuSecond\":{N(r.Responses / cpu)},\"handshakeThreadCpuSeconds\":{(double.IsFinite(hsCpu) ? hsCpu.ToString("F2", CultureInfo.InvariantCulture) : "null")},\"perHandshakeThreadCpuSecond\":{N(r.Responses / hsCpu)},\"cookieRepliesPerCpuSecond\":{N(cookiePerCpu)},\"x25519Us\":{x25519Us:F2},\"x25519PerHandshake\":{perHandshakeUs / x25519Us:F2},\"x25519PerHandshakeThread\":{(double.IsFinite(hsCpu) ? (1e6 * hsCpu / r.Responses / x25519Us).ToString("F2", CultureInfo.InvariantCulture) : "null")}}}"));
    }
}
