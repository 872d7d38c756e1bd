using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using WgEngine.Noise;

namespace Flood;

/// <summary>
/// Closed-loop load generator for a responder on loopback: sends prepared initiations from one socket,
/// at most <c>inFlight</c> unanswered at a time, and counts the answers (handshake responses and
/// cookie replies) that come back to it. Answers that do not come within 250 ms are written off as
/// lost, so a responder that drops messages slows the run down instead of stalling it. Bounded in time.
/// </summary>
internal sealed class HandshakeLoad : IDisposable
{
    public readonly record struct Result(long Sent, long Responses, long CookieReplies, long Lost, double Seconds);

    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly IPEndPoint _to;
    private readonly Thread _receiver;
    private volatile bool _stop;
    private long _responses, _cookieReplies;

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
        long r0 = Volatile.Read(ref _responses), c0 = Volatile.Read(ref _cookieReplies), a0 = r0 + c0;
        long sent = 0, lost = 0, lastAnswers = a0;
        var clock = Stopwatch.StartNew();
        var stalled = Stopwatch.StartNew();
        int i = first;
        while (clock.Elapsed.TotalSeconds < seconds && (cycle || i < end))
        {
            long answers = Answers;
            if (answers != lastAnswers) { lastAnswers = answers; stalled.Restart(); }
            if (sent - (answers - a0) - lost >= inFlight)
            {
                if (stalled.ElapsedMilliseconds > 250) { lost = Math.Max(0, sent - (answers - a0)); stalled.Restart(); }
                Thread.Yield();
                continue;
            }
            _socket.SendTo(messages[i], _to);
            sent++;
            if (++i == end && cycle) i = first;
        }
        var drain = Stopwatch.StartNew();
        while (Answers - a0 < sent - lost && drain.Elapsed.TotalSeconds < 2) Thread.Sleep(1);
        double wall = clock.Elapsed.TotalSeconds;
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
        }
    }

    public void Dispose()
    {
        _stop = true;
        _receiver.Join(1000);
        _socket.Dispose();
    }
}
