namespace WgEngine.Egress.Tcp;

/// <summary>Where a connection's segments go (the tunnel, or a test's capture).</summary>
internal interface ITcpOutput
{
    void Emit(ReadOnlySpan<byte> ipPacket);
}

internal enum TcpState
{
    /// <summary>SYN received, host-side connect in progress; nothing sent to the peer yet.</summary>
    Connecting,
    SynReceived, Established, CloseWait, LastAck, FinWait1, FinWait2, Closing, TimeWait, Closed,
}

/// <summary>Why a host-side connect failed.</summary>
internal enum HostConnectError { None, Refused, Unreachable, TimedOut }

/// <summary>
/// One terminated TCP flow, I/O-free: segments from the peer and the clock go in, segments to the peer
/// come out through <see cref="ITcpOutput"/>, and the host side moves bytes through two rings
/// (<see cref="ReceivedReadable"/> towards the host, <see cref="SendWritable"/> from it). We play the
/// peer's destination: our segments go from the remote endpoint to the peer. Not thread-safe: the owner
/// holds one lock around every call. Every method takes the current monotonic time.
/// </summary>
internal sealed partial class TcpConnection : IDisposable
{
    private const int MaxSynAckRetries = 5;
    private const int MaxRetries = 12;

    private readonly ITcpOutput _out;
    private readonly EgressOptions _opt;
    private readonly EgressCounters _counters;
    private readonly byte[] _peerAddr, _remoteAddr;
    private readonly ushort _peerPort, _remotePort;
    private readonly byte[] _synQuote;       // the peer's SYN, quoted in an ICMP unreachable
    private readonly byte[] _tx = new byte[1500];
    private ByteRing? _rcv, _snd;

    private TcpState _state;
    private bool _countedActive;

    public TcpState State
    {
        get => _state;
        private set
        {
            _state = value;
            // tcpActive counts established flows until they close or wait out TIME_WAIT
            if (value is TcpState.Closed or TcpState.TimeWait && _countedActive)
            {
                _countedActive = false;
                Interlocked.Decrement(ref _counters.tcpActive);
            }
        }
    }

    /// <summary>The host socket must be aborted (RST either way, or a timeout).</summary>
    public bool AbortHost { get; private set; }

    /// <summary>Effective maximum segment size towards the peer.</summary>
    public int Mss => _mss;

    /// <summary>The peer's window in bytes (scaled).</summary>
    public uint PeerWindow => _sndWnd;

    internal RtoEstimator Rtt => _rto;

    public TcpConnection(ITcpOutput output, EgressOptions options, EgressCounters counters, scoped in TcpSegment syn, uint iss, TimeSpan now)
    {
        _out = output;
        _opt = options;
        _counters = counters;
        _peerAddr = syn.Source.ToArray();
        _remoteAddr = syn.Destination.ToArray();
        _peerPort = syn.SourcePort;
        _remotePort = syn.DestinationPort;
        bool v4 = syn.Version == 4;
        _synQuote = new byte[(v4 ? 20 : 40) + 20]; // the SYN's headers (without options) name the flow for the peer's stack
        TcpPacketWriter.WriteControl(_synQuote, syn.Source, syn.Destination, syn.SourcePort, syn.DestinationPort,
            syn.Seq, syn.Ack, syn.Flags, syn.Window, TcpOptionsOut.None);

        _irs = syn.Seq;
        _rcvNxt = syn.Seq + 1;
        _iss = iss;
        _sndUna = iss;
        _sndNxt = iss;
        _sndMax = iss;
        _sndBase = iss + 1;
        _wl1 = syn.Seq;
        _wl2 = iss;
        // MSS: the peer's (RFC 9293 §3.7.1 default 536 / RFC 8200 1220 when absent), clamped so our segments fit the tunnel MTU.
        int tunnelMss = v4 ? 1380 : 1360;
        int peerMss = syn.Mss != 0 ? syn.Mss : v4 ? 536 : 1220;
        _mss = Math.Clamp(peerMss, 64, tunnelMss);
        _ourMss = (ushort)tunnelMss;
        if (syn.WindowScale >= 0)
        {
            _sndScale = syn.WindowScale;
            while (_rcvScale < 14 && (options.TcpBufferBytes >> _rcvScale) > 65535) _rcvScale++;
            _wscaleOk = true;
        }
        _sackOk = syn.SackPermitted;
        _sndWnd = syn.Window; // a SYN's window is never scaled (RFC 7323 §2.2)
        _cwnd = 10 * _mss;    // RFC 6928 initial window
        _ssthresh = int.MaxValue;
        _connectDeadline = now + options.TcpConnectTimeout;
        _lastActivity = now;
        State = TcpState.Connecting;
    }

    private bool Synchronized => State >= TcpState.Established && State != TcpState.Closed;

    // ---- host side ----------------------------------------------------------------------------------

    /// <summary>The host-side connect succeeded: allocate the flow's buffers and answer SYN-ACK.</summary>
    public void HostConnected(TimeSpan now)
    {
        if (State != TcpState.Connecting) return;
        int cap = _opt.TcpBufferBytes;
        _rcv = new ByteRing(cap);   // arrays are rented on first data and handed back when idle
        _snd = new ByteRing(cap);
        State = TcpState.SynReceived;
        _sndNxt = _sndMax = _iss + 1;
        _lastActivity = now;
        SendSynAck();
        _rtoDeadline = now + _rto.Rto;
        _timing = true;
        _timedSeq = _iss;
        _timedAt = now;
    }

    /// <summary>The host-side connect failed: refused gets a RST, unreachable an ICMP error, a timeout a RST.</summary>
    public void HostConnectFailed(HostConnectError error)
    {
        if (State != TcpState.Connecting) return;
        if (error == HostConnectError.Unreachable)
        {
            Interlocked.Increment(ref _counters.tcpUnreachable);
            int n = TcpPacketWriter.WriteUnreachable(_tx, _synQuote);
            if (n > 0) _out.Emit(_tx.AsSpan(0, n));
        }
        else
        {
            Interlocked.Increment(ref error == HostConnectError.Refused ? ref _counters.tcpRefused : ref _counters.tcpUnreachable);
            SendControl(0, _rcvNxt, TcpFlags.Rst | TcpFlags.Ack, 0);
        }
        State = TcpState.Closed;
    }

    /// <summary>Free bytes of the buffer towards the peer: read no more than this from the host.</summary>
    public int SendFree => _snd is null || _hostEof || !CanQueueData ? 0 : _snd.Free;

    /// <summary>Where host bytes may be read into (contiguous part of the free space); then <see cref="CommitSendData"/>.</summary>
    public Memory<byte> SendWritable => SendFree > 0 ? _snd!.WritableSegment : Memory<byte>.Empty;

    private bool CanQueueData => State is TcpState.SynReceived or TcpState.Established or TcpState.CloseWait;

    /// <summary>Host bytes placed in <see cref="SendWritable"/> (or copied in) are queued for the peer.</summary>
    public void CommitSendData(int n, TimeSpan now)
    {
        if (n <= 0 || !CanQueueData) return;
        _snd!.Commit(n);
        _lastActivity = now;
        TrySend(now);
    }

    /// <summary>Copies host bytes in (tests and small writes); returns how many fit.</summary>
    public int WriteSendData(ReadOnlySpan<byte> data, TimeSpan now)
    {
        int n = Math.Min(data.Length, SendFree);
        if (n <= 0) return 0;
        _snd!.Write(data.Slice(0, n));
        _lastActivity = now;
        TrySend(now);
        return n;
    }

    /// <summary>The host closed its sending side: a FIN follows the queued data.</summary>
    public void HostEof(TimeSpan now)
    {
        if (_hostEof || !CanQueueData) return;
        _hostEof = true;
        TrySend(now);
    }

    /// <summary>The host connection broke (reset or error): RST to the peer, flow closed.</summary>
    public void HostReset() => ResetBoth();

    /// <summary>In-order bytes from the peer not yet written to the host (contiguous part).</summary>
    public Memory<byte> ReceivedReadable => _rcv is null ? Memory<byte>.Empty : _rcv.ReadableSegment;

    public int ReceivedCount => _rcv?.Count ?? 0;

    /// <summary>The peer's FIN arrived and every byte before it went to the host: shut the host socket's send side.</summary>
    public bool PeerFinDelivered => _finReceived && ReceivedCount == 0;

    /// <summary>The host took <paramref name="n"/> bytes; the window reopens (with an update if it grew enough).</summary>
    public void ConsumeReceived(int n, TimeSpan now)
    {
        if (_rcv is null || n <= 0) return;
        _rcv.Consume(n);
        _lastActivity = now;
        if (Synchronized && !_finReceived && WindowUpdateDue)
            SendAck();
    }

    /// <summary>Returns the send ring's array while it holds nothing; only while no <see cref="SendWritable"/> segment is out.</summary>
    public void ReleaseIdleSendBuffer() => _snd?.ReleaseIfEmpty();

    /// <summary>Returns the receive ring's array while it holds nothing in order or out of order; only while no <see cref="ReceivedReadable"/> segment is out.</summary>
    public void ReleaseIdleReceiveBuffer()
    {
        if (_rcv is not null && _oooCount == 0) _rcv.ReleaseIfEmpty();
    }

    /// <summary>Bytes of the flow's rings currently backed by rented arrays (for memory accounting).</summary>
    public int BufferBytes => (_rcv is { HasBuffer: true } ? _rcv.Capacity : 0) + (_snd is { HasBuffer: true } ? _snd.Capacity : 0);

    /// <summary>Tears the flow down (egress disposal): RST to a synchronized peer.</summary>
    public void Abort()
    {
        if (State is TcpState.Closed or TcpState.TimeWait) { State = TcpState.Closed; return; }
        if (State == TcpState.Connecting) { State = TcpState.Closed; AbortHost = true; return; }
        ResetBoth();
    }

    private void ResetBoth()
    {
        if (State == TcpState.Closed) return;
        if (State != TcpState.Connecting)
            SendControl(_sndNxt, _rcvNxt, TcpFlags.Rst | TcpFlags.Ack, 0);
        Interlocked.Increment(ref _counters.tcpResets);
        AbortHost = true;
        State = TcpState.Closed;
    }

    // ---- clock --------------------------------------------------------------------------------------

    /// <summary>Runs every timer that is due: connect timeout, retransmission, persist, delayed ACK, TIME_WAIT, idle.</summary>
    public void OnTimer(TimeSpan now)
    {
        switch (State)
        {
            case TcpState.Closed:
                return;
            case TcpState.Connecting:
                if (now >= _connectDeadline) { AbortHost = true; HostConnectFailed(HostConnectError.TimedOut); }
                return;
            case TcpState.TimeWait:
                if (now >= _timeWaitUntil) State = TcpState.Closed;
                return;
        }
        if (now - _lastActivity >= _opt.TcpIdleTimeout) { ResetBoth(); return; }
        if (_rtoDeadline != TimeSpan.Zero && now >= _rtoDeadline) OnRetransmitTimeout(now);
        if (State == TcpState.Closed) return;
        if (_persistDeadline != TimeSpan.Zero && now >= _persistDeadline) OnPersistTimeout(now);
        if (_ackPending > 0) SendAck();
    }

    /// <summary>When <see cref="OnTimer"/> next has something to do (TimeSpan.Zero: at once).</summary>
    public TimeSpan NextDeadline
    {
        get
        {
            switch (State)
            {
                case TcpState.Closed: return TimeSpan.MaxValue;
                case TcpState.Connecting: return _connectDeadline;
                case TcpState.TimeWait: return _timeWaitUntil;
            }
            if (_ackPending > 0) return TimeSpan.Zero;
            var idle = _opt.TcpIdleTimeout;
            var due = idle >= TimeSpan.MaxValue - _lastActivity ? TimeSpan.MaxValue : _lastActivity + idle;
            if (_rtoDeadline != TimeSpan.Zero && _rtoDeadline < due) due = _rtoDeadline;
            if (_persistDeadline != TimeSpan.Zero && _persistDeadline < due) due = _persistDeadline;
            return due;
        }
    }

    public void Dispose()
    {
        _rcv?.ReturnBuffer();
        _snd?.ReturnBuffer();
        _rcv = _snd = null;
    }

    // ---- sequence arithmetic (RFC 1982 style, modulo 2^32) ------------------------------------------
    private static bool Lt(uint a, uint b) => (int)(a - b) < 0;
    private static bool Le(uint a, uint b) => (int)(a - b) <= 0;
    private static bool Gt(uint a, uint b) => (int)(a - b) > 0;
    private static bool Ge(uint a, uint b) => (int)(a - b) >= 0;
}
