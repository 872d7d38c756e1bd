using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using WgEngine.Noise;

namespace Flood;

/// <summary>
/// Closed-loop load generator for a responder on loopback: sends prepared initiations from one socket,
/// at most <c>inFlight</c> unanswered at a time, and counts the answers (handshake responses and
/// cookie replies) that come back to it. When nothing is answered for 250 ms the outstanding messages
/// are written off as lost, so a responder that drops messages slows the run down instead of stalling
/// it. Bounded in time (and the drain after it to 2 s).
/// </summary>
internal sealed class HandshakeLoad : IDisposable
{
    public readonly record struct Result(long Sent, long Responses, long CookieReplies, long Lost, double Seconds);

    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly IPEndPoint _to;
    private readonly Thread _receiver;
    private volatile bool _stop;
    private long _responses, _cookieReplies;
    private SemaphoreSlim? _window;

    public HandshakeLoad(IPEndPoint to)
    {
        if (!IPAddress.IsLoopback(to.Address)) throw new ArgumentException("the handshake load goes to loopback only");
        _to = to;
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _socket.ReceiveBufferSize = 4 << 20;
        _socket.ReceiveTimeout = 100;
        _receiver = new Thread(Receive) { IsBackground = true, Name = "load-receive" };
        _receiver.Start();
    }

    private long Answers => Volatile.Read(ref _responses) + Volatile.Read(ref _cookieReplies);

    /// <summary>
    /// Sends messages[first..end) (round and round when <paramref name="cycle"/>) until
    /// <paramref name="seconds"/> pass or the messages run out, then waits up to 2 s for the answers.
    /// </summary>
    public Result Run(byte[][] messages, int first, int end, double seconds, int inFlight, bool cycle)
    {
        long r0 = Volatile.Read(ref _responses), c0 = Volatile.Read(ref _cookieReplies);
        long sent = 0, lost = 0;
        // The window: one slot per unanswered message, given back by the receive thread per answer.
        // The sender blocks on it rather than spinning, so it leaves the CPU to the responder.
        using var window = new SemaphoreSlim(inFlight);
        Volatile.Write(ref _window, window);
        var clock = Stopwatch.StartNew();
        int i = first;
        while (clock.Elapsed.TotalSeconds < seconds && (cycle || i < end))
        {
            if (!window.Wait(250))
            {
                // Nothing answered for 250 ms: write the outstanding messages off, reopen the window.
                long outstanding = sent - lost - (Answers - r0 - c0);
                if (outstanding > 0) { lost += outstanding; window.Release((int)Math.Min(outstanding, inFlight)); }
                continue;
            }
            _socket.SendTo(messages[i], _to);
            sent++;
            if (++i == end && cycle) i = first;
        }
        long a0 = r0 + c0;
        var drain = Stopwatch.StartNew();
        while (Answers - a0 < sent - lost && drain.Elapsed.TotalSeconds < 2) Thread.Sleep(1);
        double wall = clock.Elapsed.TotalSeconds;
        Volatile.Write(ref _window, null);
        long responses = Volatile.Read(ref _responses) - r0, cookies = Volatile.Read(ref _cookieReplies) - c0;
        return new Result(sent, responses, cookies, Math.Max(0, sent - responses - cookies), wall);
    }

    private void Receive()
    {
        var buf = new byte[256];
        while (!_stop)
        {
            int n;
            try { n = _socket.Receive(buf); } catch (SocketException) { continue; } catch (ObjectDisposedException) { return; }
            if (n == MessageLayout.ResponseSize && buf[0] == MessageLayout.TypeResponse) Interlocked.Increment(ref _responses);
            else if (n == MessageLayout.CookieReplySize && buf[0] == MessageLayout.TypeCookieReply) Interlocked.Increment(ref _cookieReplies);
            else continue;
            try { Volatile.Read(ref _window)?.Release(); }
            catch (Exception e) when (e is SemaphoreFullException or ObjectDisposedException) { } // a late answer after a write-off
        }
    }

    public void Dispose()
    {
        _stop = true;
        _receiver.Join(1000);
        _socket.Dispose();
    }
}
