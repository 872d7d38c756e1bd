using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using WgEngine.Noise;

namespace Flood;

/// <summary>
/// A UDP relay for one real client in front of the flooded responder, so a test can see what crossed
/// the wire: whether the client's initiations carried mac2, the cookie replies it got, how long after
/// its first mac2-carrying initiation the response came, and whether the client had to send another
/// initiation (its Rekey-Timeout retransmission) before that response arrived.
/// </summary>
internal sealed class Relay : IDisposable
{
    private readonly Socket _front = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Socket _back = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly object _lock = new();
    private EndPoint? _client;
    private volatile bool _stop;

    public Relay(IPEndPoint target)
    {
        _front.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _back.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _back.Connect(target);
        _front.ReceiveTimeout = _back.ReceiveTimeout = 200;
        new Thread(Forward) { IsBackground = true, Name = "relay-out" }.Start();
        new Thread(Backward) { IsBackground = true, Name = "relay-in" }.Start();
    }

    public int Port => ((IPEndPoint)_front.LocalEndPoint!).Port;
    public int Initiations, InitiationsWithMac2, CookieReplies, Responses;
    /// <summary>Initiations the client sent after its first mac2-carrying one and before the first response:
    /// each is a retransmission, i.e. the response did not come within the client's Rekey-Timeout.</summary>
    public int InitiationsAfterMac2BeforeResponse;
    public bool FirstInitiationHadMac2;
    public double FirstMac2At = -1, FirstResponseAt = -1;

    private void Forward()
    {
        var buf = new byte[2048];
        while (!_stop)
        {
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            int n;
            try { n = _front.ReceiveFrom(buf, ref from); } catch (SocketException) { continue; }
            lock (_lock)
            {
                _client = from;
                if (n == MessageLayout.InitiationSize && buf[0] == MessageLayout.TypeInitiation)
                {
                    bool mac2 = buf.AsSpan(n - 16, 16).ContainsAnyExcept((byte)0);
                    if (Initiations++ == 0) FirstInitiationHadMac2 = mac2;
                    if (InitiationsWithMac2 > 0 && Responses == 0) InitiationsAfterMac2BeforeResponse++;
                    if (mac2 && InitiationsWithMac2++ == 0) FirstMac2At = _clock.Elapsed.TotalMilliseconds;
                }
            }
            try { _back.Send(buf.AsSpan(0, n)); } catch (SocketException) { }
        }
    }

    private void Backward()
    {
        var buf = new byte[2048];
        while (!_stop)
        {
            int n;
            try { n = _back.Receive(buf); } catch (SocketException) { continue; }
            EndPoint? client;
            lock (_lock)
            {
                client = _client;
                if (n == MessageLayout.CookieReplySize && buf[0] == MessageLayout.TypeCookieReply) CookieReplies++;
                if (n == MessageLayout.ResponseSize && buf[0] == MessageLayout.TypeResponse && Responses++ == 0)
                    FirstResponseAt = _clock.Elapsed.TotalMilliseconds;
            }
            if (client is not null) try { _front.SendTo(buf.AsSpan(0, n), client); } catch (SocketException) { }
        }
    }

    public void Dispose()
    {
        _stop = true;
        Thread.Sleep(250);
        _front.Dispose();
        _back.Dispose();
    }
}
