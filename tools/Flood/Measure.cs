using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using WgEngine.Conn;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;

namespace Flood;

/// <summary>
/// The responder's handshake throughput, in-process over UDP loopback, timed by the CPU time of the
/// engine's one handshake thread ("wg-handshake"), so the figure is per core whatever else runs:
///  1. full handshakes: real initiations from configured peers, device never under load (every
///     message costs the whole responder side: 2 DH to read it, 1 key generation and 2 DH to answer);
///  2. cookie replies: the same messages with the device forced under load (no DH at all).
/// The sender keeps a bounded number of messages in flight, so nothing is dropped at the queue.
/// </summary>
internal static class Measure
{
    private const int InFlight = 256;

    public static void Run(double seconds, int peerCount)
    {
        seconds = Math.Min(seconds, 10);
        var gwKey = WgPrivateKey.Generate();
        Span<byte> gwPub = stackalloc byte[32];
        gwKey.PublicKey.CopyTo(gwPub);
        var responder = gwPub.ToArray();

        // Enough initiations for ~10k handshakes/s; peers take turns, so each one's are >= 20 ms apart
        // and their timestamps grow (one round per second of TAI64N).
        int rounds = Math.Max(2, (int)Math.Ceiling(10_000 * seconds / peerCount));
        var peers = new (byte[] Priv, byte[] Pub)[peerCount];
        for (int i = 0; i < peerCount; i++) peers[i] = Initiations.NewKeyPair();
        var messages = new byte[rounds * peerCount][];
        var t0 = DateTimeOffset.UtcNow;
        Parallel.For(0, messages.Length, i =>
        {
            int round = i / peerCount, p = i % peerCount;
            messages[i] = Initiations.Create(responder, peers[p].Priv, peers[p].Pub, t0.AddSeconds(round), (uint)i);
        });
        Console.WriteLine($"prepared {messages.Length} initiations from {peerCount} peers");

        var full = RunPhase(gwKey, peers, messages, seconds, threshold: int.MaxValue, c => c.Handshakes, cycle: false);
        Report("full handshakes (never under load)", full);
        var cookie = RunPhase(gwKey, peers, messages, seconds, threshold: 0, c => c.CookieReplies, cycle: true);
        Report("cookie replies (always under load)", cookie);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"handshakesPerCpuSecond\":{full.PerCpuSecond:F0},\"handshakesPerSecond\":{full.PerSecond:F0},\"cookieRepliesPerCpuSecond\":{cookie.PerCpuSecond:F0},\"cookieRepliesPerSecond\":{cookie.PerSecond:F0}}}"));
    }

    private readonly record struct Phase(long Done, double Seconds, double CpuSeconds)
    {
        public double PerSecond => Done / Seconds;
        public double PerCpuSecond => Done / CpuSeconds;
    }

    private static void Report(string what, Phase p) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{what}: {p.Done} in {p.Seconds:F2} s wall = {p.PerSecond:F0}/s; handshake thread CPU {p.CpuSeconds:F2} s = {p.PerCpuSecond:F0} per CPU-second ({1e6 * p.CpuSeconds / p.Done:F1} us each)"));

    private static Phase RunPhase(WgPrivateKey key, (byte[] Priv, byte[] Pub)[] peers, byte[][] messages, double seconds,
        int threshold, Func<DeviceCounters, long> done, bool cycle)
    {
        using var device = new WgDevice(key, new UdpBind(0, IPAddress.Loopback), new DeviceOptions { Workers = 1, HandshakeLoadThreshold = threshold });
        for (int i = 0; i < peers.Length; i++)
            device.AddPeer(new PeerConfig
            {
                PublicKey = new WgKey(peers[i].Pub),
                AllowedIPs = [IpPrefix.Parse($"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32")],
            });
        device.Start();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.ReceiveBufferSize = 1 << 16; // answers are not read: the kernel drops them
        var to = new IPEndPoint(IPAddress.Loopback, device.ListenPort);

        var c = device.Counters;
        long Settled() => done(c) + c.HandshakeInvalid + c.HandshakeReplayed + c.QueueFull + c.RateLimited;
        double cpu0 = HandshakeThreadCpuSeconds();
        var clock = Stopwatch.StartNew();
        long sent = 0;
        // Full handshakes need fresh messages (timestamps only grow); cookie replies can reuse them.
        while (clock.Elapsed.TotalSeconds < seconds && (cycle || sent < messages.Length))
        {
            if (sent - Settled() >= InFlight) { Thread.Yield(); continue; }
            socket.SendTo(messages[sent % messages.Length], to);
            sent++;
        }
        // Let the queue drain, then stop the clock.
        var drain = Stopwatch.StartNew();
        while (Settled() < sent && drain.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(1);
        double wall = clock.Elapsed.TotalSeconds;
        double cpu = HandshakeThreadCpuSeconds() - cpu0;
        if (c.QueueFull + c.HandshakeInvalid + c.HandshakeReplayed > 0)
            Console.WriteLine($"  (not counted: queue full {c.QueueFull}, invalid {c.HandshakeInvalid}, replayed {c.HandshakeReplayed})");
        return new Phase(done(c), wall, cpu);
    }

    /// <summary>utime + stime of this process's thread named wg-handshake (Linux /proc; 100 ticks per second).</summary>
    private static double HandshakeThreadCpuSeconds()
    {
        double total = 0;
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            string comm;
            try { comm = File.ReadAllText(Path.Combine(task, "comm")).Trim(); } catch (IOException) { continue; }
            if (comm != "wg-handshake") continue;
            var stat = File.ReadAllText(Path.Combine(task, "stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
            total += (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
        }
        return total;
    }
}
