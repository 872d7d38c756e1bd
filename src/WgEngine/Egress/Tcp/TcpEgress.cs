using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using WgEngine.Crypto;

namespace WgEngine.Egress.Tcp;

/// <summary>
/// The TCP part of the userspace egress: terminates each peer flow in a <see cref="TcpConnection"/> and
/// re-dials its destination from the host. A SYN is answered only once the host connect succeeded; limits
/// per peer and in total (pending connects included) refuse further SYNs with a RST. One timer sweeps all
/// flows for retransmission, persist, delayed ACK, TIME_WAIT and idle deadlines.
/// </summary>
internal sealed class TcpEgress : IEgressProtocol
{
    /// <summary>Granularity of every TCP timer (RTO minimum is 200 ms; delayed ACKs wait at most this long).</summary>
    internal static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(20);

    private readonly IPacketSink _sink;
    private readonly IHostConnector _connector;
    private readonly TimeProvider _time;
    private readonly long _epoch;
    private readonly ConcurrentDictionary<TcpFlowKey, TcpFlow> _flows = new();
    private readonly Dictionary<WgKey, int> _perPeer = new();
    private readonly object _admit = new();
    private readonly ITimer _timer;
    private int _counted;
    private bool _disposed;

    public TcpEgress(IPacketSink sink, EgressOptions options, EgressCounters counters)
        : this(sink, options, counters, new SocketHostConnector()) { }

    public TcpEgress(IPacketSink sink, EgressOptions options, EgressCounters counters, IHostConnector connector)
    {
        _sink = sink;
        Options = options;
        Counters = counters;
        _connector = connector;
        _time = options.TimeProvider;
        _epoch = _time.GetTimestamp();
        _timer = _time.CreateTimer(static s => ((TcpEgress)s!).Sweep(), this, Tick, Tick);
    }

    internal EgressOptions Options { get; }
    internal EgressCounters Counters { get; }

    /// <summary>Monotonic time since the egress started, from the injected TimeProvider.</summary>
    internal TimeSpan Now => _time.GetElapsedTime(_epoch);

    /// <summary>Flows in the table, TIME_WAIT included.</summary>
    internal int FlowCount => _flows.Count;

    /// <summary>Flows counted against the limits (connecting, open or closing; not TIME_WAIT).</summary>
    internal int CountedFlows { get { lock (_admit) return _counted; } }

    /// <summary>Ring memory held by all flows (rented while data is buffered, handed back when idle).</summary>
    internal long BufferBytes
    {
        get
        {
            long total = 0;
            foreach (var kv in _flows) total += kv.Value.BufferBytes;
            return total;
        }
    }

    public void OnPacket(WgKey fromPeer, ReadOnlySpan<byte> ipPacket)
    {
        if (!TcpSegment.TryParse(ipPacket, out var seg))
        {
            Interlocked.Increment(ref Counters.malformed);
            return;
        }
        var key = TcpFlowKey.Of(fromPeer, seg);
        bool isSyn = seg.Has(TcpFlags.Syn) && !seg.Has(TcpFlags.Ack | TcpFlags.Rst);
        if (_flows.TryGetValue(key, out var flow))
        {
            if (!(isSyn && flow.State is TcpState.TimeWait or TcpState.Closed)) { flow.OnSegment(seg); return; }
            flow.Abort(); // a new incarnation of the 4-tuple ends TIME_WAIT early (as RFC 6191 allows)
            lock (_admit) { if (_flows.TryGetValue(key, out var f) && f == flow) _flows.TryRemove(key, out _); }
        }
        if (seg.Has(TcpFlags.Rst)) return;
        if (!isSyn) { SendReset(seg); return; } // no such flow (RFC 9293 §3.10.7.1)
        if (_disposed) return;

        lock (_admit)
        {
            _perPeer.TryGetValue(fromPeer, out int mine);
            if (_counted >= Options.MaxTcpConnections || mine >= Options.MaxTcpConnectionsPerPeer || _flows.ContainsKey(key))
            {
                if (!_flows.ContainsKey(key)) { Interlocked.Increment(ref Counters.tcpLimited); SendReset(seg); }
                return;
            }
            flow = new TcpFlow(this, _sink, key, seg, RandomIss(), Now);
            _flows[key] = flow;
            _perPeer[fromPeer] = mine + 1;
            _counted++;
        }
        flow.Start(_connector, new IPEndPoint(new IPAddress(seg.Destination), seg.DestinationPort));
    }

    /// <summary>RFC 6528 asks for unpredictable initial sequence numbers.</summary>
    private static uint RandomIss()
    {
        Span<byte> b = stackalloc byte[4];
        RandomNumberGenerator.Fill(b);
        return BitConverter.ToUInt32(b);
    }

    /// <summary>RST for a segment that belongs to no flow, or a SYN over the limits.</summary>
    private void SendReset(scoped in TcpSegment seg)
    {
        Span<byte> buf = stackalloc byte[TcpPacketWriter.MaxHeaders];
        int n = seg.Has(TcpFlags.Ack)
            ? TcpPacketWriter.WriteControl(buf, seg.Destination, seg.Source, seg.DestinationPort, seg.SourcePort,
                seg.Ack, 0, TcpFlags.Rst, 0, TcpOptionsOut.None)
            : TcpPacketWriter.WriteControl(buf, seg.Destination, seg.Source, seg.DestinationPort, seg.SourcePort,
                0, seg.Seq + (uint)seg.SeqLength, TcpFlags.Rst | TcpFlags.Ack, 0, TcpOptionsOut.None);
        _sink.SendPacket(buf.Slice(0, n));
    }

    /// <summary>A flow stops counting against the limits (TIME_WAIT or closed). Called under the flow's lock.</summary>
    internal void Uncount(TcpFlow flow)
    {
        lock (_admit)
        {
            if (!flow.Counted) return;
            flow.Counted = false;
            _counted--;
            if (_perPeer.TryGetValue(flow.Key.Peer, out int n))
            {
                if (n <= 1) _perPeer.Remove(flow.Key.Peer);
                else _perPeer[flow.Key.Peer] = n - 1;
            }
        }
    }

    /// <summary>A closed flow leaves the table. Called under the flow's lock.</summary>
    internal void Remove(TcpFlow flow)
    {
        Uncount(flow);
        lock (_admit)
        {
            if (_flows.TryGetValue(flow.Key, out var f) && f == flow) _flows.TryRemove(flow.Key, out _);
        }
    }

    /// <summary>One pass over every flow's timers.</summary>
    internal void Sweep()
    {
        var now = Now;
        foreach (var kv in _flows) kv.Value.OnTimer(now);
    }

    public void Dispose()
    {
        _disposed = true;
        _timer.Dispose();
        foreach (var kv in _flows) kv.Value.Abort();
    }
}
