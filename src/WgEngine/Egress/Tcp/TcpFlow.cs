using System.Net;

namespace WgEngine.Egress.Tcp;

/// <summary>
/// Binds one <see cref="TcpConnection"/> to its host stream: the connect, a pump reading the host into the
/// send ring (only while it has room: a slow peer stops the reads) and a pump writing the receive ring to
/// the host (the ring's free space is the peer's window: a slow host closes it). One lock per flow guards
/// the connection; the pumps do their I/O on ring memory outside it.
/// </summary>
internal sealed class TcpFlow : ITcpOutput
{
    private readonly TcpEgress _owner;
    private readonly IPacketSink _sink;
    private readonly CancellationTokenSource _cts = new();
    private readonly AsyncSignal _sendSpace = new(), _received = new();
    private IHostStream? _stream;
    private int _pumps;
    private bool _connecting = true, _aborted, _finished;
    private bool _readerHolds, _writerHolds; // a pump is using ring memory outside the lock: that ring keeps its array
    private long _dueTicks;   // the connection's next timer deadline, read by the sweep without the lock

    public TcpFlow(TcpEgress owner, IPacketSink sink, TcpFlowKey key, scoped in TcpSegment syn, uint iss, TimeSpan now)
    {
        _owner = owner;
        _sink = sink;
        Key = key;
        Conn = new TcpConnection(this, owner.Options, owner.Counters, syn, iss, now);
    }

    public TcpFlowKey Key { get; }
    public TcpConnection Conn { get; }

    /// <summary>Still counted against the connection limits (not yet in TIME_WAIT or closed).</summary>
    public bool Counted { get; set; } = true;

    public TcpState State { get { lock (this) return Conn.State; } }

    /// <summary>Ring memory this flow holds right now.</summary>
    public int BufferBytes { get { lock (this) return Conn.BufferBytes; } }

    void ITcpOutput.Emit(ReadOnlySpan<byte> ipPacket) => _sink.SendPacket(ipPacket);

    public void Start(IHostConnector connector, IPEndPoint remote)
    {
        _ = ConnectAsync(connector, remote);
    }

    private async Task ConnectAsync(IHostConnector connector, IPEndPoint remote)
    {
        HostConnectResult result;
        try { result = await connector.ConnectAsync(remote, _cts.Token).ConfigureAwait(false); }
        catch (Exception) { result = HostConnectResult.Failed(HostConnectError.Unreachable); }
        lock (this)
        {
            _connecting = false;
            if (Conn.State != TcpState.Connecting)          // timed out or reset meanwhile
            {
                result.Stream?.Abort();
                AfterChange();
                return;
            }
            if (result.Stream is null) Conn.HostConnectFailed(result.Error == HostConnectError.None ? HostConnectError.Unreachable : result.Error);
            else
            {
                _stream = result.Stream;
                _pumps = 2;
                Conn.HostConnected(_owner.Now);
            }
            AfterChange();
        }
        if (result.Stream is not null)
        {
            _ = ReadHostAsync(result.Stream);
            _ = WriteHostAsync(result.Stream);
        }
    }

    public void OnSegment(scoped in TcpSegment seg)
    {
        lock (this) { Conn.OnSegment(seg, _owner.Now); AfterChange(); }
    }

    /// <summary>Runs the connection's timers if one is due (the sweep skips idle flows without taking their lock).</summary>
    public void OnTimer(TimeSpan now)
    {
        if (now.Ticks < Volatile.Read(ref _dueTicks)) return;
        lock (this) { Conn.OnTimer(now); AfterChange(); }
    }

    /// <summary>Tear down (egress disposal, or a new SYN replacing a TIME_WAIT flow).</summary>
    public void Abort()
    {
        lock (this) { Conn.Abort(); AfterChange(); }
    }

    /// <summary>Host to peer: read only into free send-ring space.</summary>
    private async Task ReadHostAsync(IHostStream stream)
    {
        var ct = _cts.Token;
        try
        {
            bool drained = true;
            while (true)
            {
                // Once the host has nothing more to give, wait for it with a zero-byte read that holds no
                // ring memory, so the send ring's array can go back to the pool while the flow is quiet.
                if (drained) await stream.ReadAsync(Memory<byte>.Empty, ct).ConfigureAwait(false);
                Memory<byte> space;
                lock (this)
                {
                    if (_aborted || Conn.State is not (TcpState.SynReceived or TcpState.Established or TcpState.CloseWait)) break;
                    space = Conn.SendWritable;
                    if (space.IsEmpty) _sendSpace.Reset();
                    else _readerHolds = true;
                }
                if (space.IsEmpty) { await _sendSpace.WaitAsync().ConfigureAwait(false); drained = false; continue; }
                int n = await stream.ReadAsync(space, ct).ConfigureAwait(false);
                drained = n < space.Length;
                bool batch = _sink.BeginBatch();   // the segments this read allows leave in one send call
                try
                {
                    lock (this)
                    {
                        _readerHolds = false;
                        if (n == 0) { Conn.HostEof(_owner.Now); AfterChange(); break; }
                        Conn.CommitSendData(n, _owner.Now);
                        AfterChange();
                    }
                }
                finally { if (batch) _sink.EndBatch(); }
            }
        }
        catch (Exception) { HostBroke(); }
        finally { PumpDone(reader: true); }
    }

    /// <summary>Peer to host: write in-order received bytes, then half-close after the peer's FIN.</summary>
    private async Task WriteHostAsync(IHostStream stream)
    {
        var ct = _cts.Token;
        try
        {
            while (true)
            {
                Memory<byte> data;
                bool fin;
                lock (this)
                {
                    if (_aborted || Conn.State == TcpState.Closed && Conn.ReceivedCount == 0 && !Conn.PeerFinDelivered) break;
                    data = Conn.ReceivedReadable;
                    fin = Conn.PeerFinDelivered;
                    if (data.IsEmpty && !fin) _received.Reset();
                    else _writerHolds = !data.IsEmpty;
                }
                if (fin) { stream.ShutdownSend(); break; }
                if (data.IsEmpty) { await _received.WaitAsync().ConfigureAwait(false); continue; }
                await stream.WriteAsync(data, ct).ConfigureAwait(false);
                lock (this) { _writerHolds = false; Conn.ConsumeReceived(data.Length, _owner.Now); AfterChange(); }
            }
        }
        catch (Exception) { HostBroke(); }
        finally { PumpDone(reader: false); }
    }

    private void HostBroke()
    {
        lock (this)
        {
            if (_aborted) return;
            Conn.HostReset();
            AfterChange();
        }
    }

    /// <summary>A pump ended: only its own hold on ring memory ends with it; the other pump may still be
    /// reading or writing its ring outside the lock (the writer ends on the peer's FIN while the host still sends).</summary>
    private void PumpDone(bool reader)
    {
        lock (this)
        {
            _pumps--;
            if (reader) _readerHolds = false;
            else _writerHolds = false;
            AfterChange();
        }
    }

    /// <summary>After every change (under the lock): wake the pumps, abort the host on a reset, finish when done.</summary>
    private void AfterChange()
    {
        _sendSpace.Set();
        _received.Set();
        if (Conn.AbortHost && !_aborted)
        {
            _aborted = true;
            _cts.Cancel();
            _stream?.Abort();
        }
        Volatile.Write(ref _dueTicks, Conn.NextDeadline.Ticks);
        if (!_readerHolds) Conn.ReleaseIdleSendBuffer();      // idle rings hold no array
        if (!_writerHolds) Conn.ReleaseIdleReceiveBuffer();
        var state = Conn.State;
        if (state is TcpState.TimeWait or TcpState.Closed && Counted) _owner.Uncount(this);
        if (_finished || _pumps > 0 || _connecting || state is not (TcpState.TimeWait or TcpState.Closed)) return;
        // Both pumps are out of the rings: the buffers can go back to the pool even while TIME_WAIT lasts.
        if (_stream is not null)
        {
            if (!_aborted) _stream.Dispose(); // an aborted stream is closed already
            _stream = null;
        }
        Conn.Dispose();
        if (state == TcpState.Closed)
        {
            _finished = true;
            _cts.Dispose();
            _owner.Remove(this);
        }
    }
}
