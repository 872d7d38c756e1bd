using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using WgEngine.Crypto;
using WgEngine.Noise;

namespace Flood;

/// <summary>
/// Sends real initiations from unknown static keys (valid mac1, no mac2) as fast as it can from many
/// source ports: the most expensive thing an attacker without a peer key can make a responder do
/// (two Diffie-Hellman before the peer lookup fails), unless the responder asks for cookies.
/// With a window (default 2048) the flooder keeps that many messages unanswered and sends as fast as
/// the responder answers: the highest rate the responder can be made to work at, its handshake queue
/// (4096) kept well past the load threshold (512) but not overflowing. Sending faster only makes
/// the queue (or the kernel) drop at random, which costs the responder nothing more but drops the
/// legitimate client's packets as well: a test of CPU share on a small shared host, not of the protocol.
/// Window 0: open loop, as fast as the sending thread can.
/// </summary>
internal static class Flooder
{
    public const double MaxSeconds = 10;
    private const int Distinct = 256;

    public readonly record struct Result(long Sent, long CookieReplies, double Seconds, int Sockets);

    public static Result Run(IPEndPoint target, WgKey responder, TimeSpan duration, int socketCount, int threads, int window)
    {
        if (duration > TimeSpan.FromSeconds(MaxSeconds)) duration = TimeSpan.FromSeconds(MaxSeconds);
        socketCount = Math.Clamp(socketCount, 1, 4096);
        threads = Math.Clamp(threads, 1, socketCount);
        Span<byte> pub = stackalloc byte[32];
        responder.CopyTo(pub);
        var messages = new byte[Distinct][];
        for (int i = 0; i < Distinct; i++)
        {
            var (priv, p) = Initiations.NewKeyPair();
            messages[i] = Initiations.Create(pub, priv, p, DateTimeOffset.UtcNow, (uint)Random.Shared.Next());
        }

        var local = target.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;
        if (!IPAddress.IsLoopback(target.Address)) local = target.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any;
        var sockets = new Socket[socketCount];
        for (int i = 0; i < socketCount; i++)
        {
            sockets[i] = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
            sockets[i].Bind(new IPEndPoint(local, 0));
        }
        var to = target.Serialize();
        long sent = 0, cookies = 0;
        var clock = Stopwatch.StartNew();
        long deadline = (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int first = t;
            workers[t] = new Thread(() =>
            {
                var rx = new byte[256];
                int m = first;
                long lastProgress = 0, writtenOff = 0, lastReceived = 0;
                for (int round = 0; clock.ElapsedTicks < deadline; round++)
                {
                    bool open = window <= 0 || Volatile.Read(ref sent) - Volatile.Read(ref cookies) - writtenOff < window;
                    if (open)
                    {
                        for (int s = first; s < sockets.Length; s += threads)
                        {
                            try { sockets[s].SendTo(messages[m++ % Distinct], SocketFlags.None, to); Interlocked.Increment(ref sent); }
                            catch (SocketException) { /* buffer full: the kernel drops, as it would for an attacker */ }
                        }
                    }
                    if (open && (round & 15) != 0) continue;
                    // Drain the replies: counts the cookie replies that really came back (and opens the window).
                    for (int s = first; s < sockets.Length; s += threads)
                    {
                        while (sockets[s].Available > 0)
                        {
                            int n;
                            try { n = sockets[s].Receive(rx); } catch (SocketException) { break; }
                            if (n == MessageLayout.CookieReplySize && rx[0] == MessageLayout.TypeCookieReply) Interlocked.Increment(ref cookies);
                        }
                    }
                    // Replies that never come (dropped anywhere) must not close the window for good: after
                    // 200 ms without any, write the outstanding ones off.
                    long now = clock.ElapsedTicks, got = Volatile.Read(ref cookies);
                    if (got != lastReceived) { lastReceived = got; lastProgress = now; }
                    else if (now - lastProgress > Stopwatch.Frequency / 5)
                    {
                        writtenOff = Volatile.Read(ref sent) - got;
                        lastProgress = now;
                    }
                    if (!open) Thread.Yield();
                }
            }) { IsBackground = true, Name = $"flood-{t}" };
            workers[t].Start();
        }
        foreach (var w in workers) w.Join();
        double seconds = clock.Elapsed.TotalSeconds;
        foreach (var s in sockets) s.Dispose();
        return new Result(sent, cookies, seconds, socketCount);
    }
}
