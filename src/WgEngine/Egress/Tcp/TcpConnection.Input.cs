namespace WgEngine.Egress.Tcp;

/// <summary>Segment arrival (RFC 9293 §3.10.7.4 order: acceptability, RST, SYN, ACK, data, FIN).</summary>
internal sealed partial class TcpConnection
{
    private const int MaxOutOfOrderRanges = 8;

    // receive state
    private readonly uint _irs;
    private uint _rcvNxt;
    private int _rcvScale;
    private bool _wscaleOk, _sackOk;
    private uint _rcvAdvRight;              // right edge of the window last advertised
    private readonly uint[] _oooStart = new uint[MaxOutOfOrderRanges], _oooEnd = new uint[MaxOutOfOrderRanges];
    private int _oooCount;
    private bool _finReceived, _finQueued;  // FIN seen in order / FIN seen ahead of missing data
    private uint _finQueuedSeq;
    private int _ackPending;

    public void OnSegment(scoped in TcpSegment seg, TimeSpan now)
    {
        switch (State)
        {
            case TcpState.Closed:
                return;
            case TcpState.Connecting:
                // Retransmitted SYNs are absorbed; a RST for the SYN cancels the connect.
                if (seg.Has(TcpFlags.Rst) && seg.Seq == _rcvNxt) { State = TcpState.Closed; AbortHost = true; }
                return;
        }

        int seqLen = seg.SeqLength;
        int wnd = _rcv?.Free ?? 0; // buffers are released once a flow waits out TIME_WAIT
        bool acceptable = seqLen == 0
            ? wnd == 0 ? seg.Seq == _rcvNxt : InWindow(seg.Seq, wnd)
            : wnd > 0 && (InWindow(seg.Seq, wnd) || InWindow(seg.Seq + (uint)seqLen - 1, wnd));

        if (seg.Has(TcpFlags.Rst))
        {
            // RFC 5961 §3.2: only an exact RST resets; one elsewhere in the window gets a challenge ACK.
            if (seg.Seq == _rcvNxt || (State == TcpState.SynReceived && acceptable))
            {
                Interlocked.Increment(ref _counters.tcpResets);
                AbortHost = true;
                State = TcpState.Closed;
            }
            else if (acceptable) SendAck();
            return;
        }

        if (seg.Has(TcpFlags.Syn))
        {
            if (State == TcpState.SynReceived && seg.Seq == _irs) SendSynAck();   // peer lost our SYN-ACK
            else if (State != TcpState.TimeWait) SendAck();                          // RFC 5961 §4 challenge ACK
            return;
        }

        if (State == TcpState.TimeWait)
        {
            // A retransmitted FIN means our last ACK was lost: ACK again and restart 2MSL (RFC 9293 §3.10.7.4).
            if (seg.Has(TcpFlags.Fin)) { SendAck(); _timeWaitUntil = now + _opt.TcpTimeWait; }
            // So does retransmitted data (a peer resends from snd_una, not its FIN, when our ACKs for the
            // data were lost): like any unacceptable segment it gets an ACK (RFC 9293 §3.10.7.4, first check),
            // else the peer retransmits into silence until it gives up.
            else if (!acceptable) SendAck();
            return;
        }

        if (!acceptable)
        {
            // Duplicates and out-of-window data are re-ACKed; with our window closed, ACKs still count (§3.10.7.4).
            if (wnd == 0 && seg.Has(TcpFlags.Ack) && !ProcessAck(seg, now)) return;
            if (State != TcpState.Closed) SendAck();
            return;
        }
        if (!seg.Has(TcpFlags.Ack)) return;
        _lastActivity = now;

        if (State == TcpState.SynReceived)
        {
            if (seg.Ack != _iss + 1) { SendControl(seg.Ack, 0, TcpFlags.Rst, 0); return; }
            State = TcpState.Established;
            Interlocked.Increment(ref _counters.tcpOpened);
            Interlocked.Increment(ref _counters.tcpActive);
            _countedActive = true;
        }

        if (!ProcessAck(seg, now) || State == TcpState.Closed) return;

        if (!seg.Payload.IsEmpty && State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2)
            ProcessData(seg.Seq, seg.Payload);
        if (seg.Has(TcpFlags.Fin) && !_finReceived)
        {
            uint finSeq = seg.Seq + (uint)seg.Payload.Length;
            if (_rcvNxt == finSeq) ReceiveFin(now);
            else if (Gt(finSeq, _rcvNxt)) { _finQueued = true; _finQueuedSeq = finSeq; }
        }
        if (_finQueued && !_finReceived && _rcvNxt == _finQueuedSeq) { _finQueued = false; ReceiveFin(now); }
        if (_ackPending > 0 && (_ackPending >= 2 || _oooCount > 0)) SendAck();
        TrySend(now);
    }

    private bool InWindow(uint seq, int wnd) => Ge(seq, _rcvNxt) && Lt(seq, _rcvNxt + (uint)wnd);

    private void ProcessData(uint seq, ReadOnlySpan<byte> data)
    {
        int off = (int)(seq - _rcvNxt);
        if (off < 0)
        {
            if (-off >= data.Length) { SendAck(); return; } // entirely old: a duplicate
            data = data.Slice(-off);
            off = 0;
        }
        int room = _rcv!.Free - off;
        if (room <= 0) { SendAck(); return; }
        if (data.Length > room) data = data.Slice(0, room);

        if (off == 0)
        {
            _rcv.Write(data);
            _rcvNxt += (uint)data.Length;
            bool filledHole = _oooCount > 0;
            AbsorbOutOfOrder();
            if (filledHole) { SendAck(); return; }  // RFC 5681 §4.2: ACK at once when a gap closes
            // Full-sized segments: ACK every second one (RFC 1122 delayed ACK); short ones (end of a burst) at once.
            _ackPending++;
            if (data.Length < _mss) SendAck();
        }
        else
        {
            _rcv.WriteAhead(off, data);
            AddRange(_rcvNxt + (uint)off, (uint)data.Length);
            SendAck(); // a duplicate ACK with SACK blocks tells the peer what is missing
        }
    }

    /// <summary>Records [start, start+len) as held ahead of rcv_nxt, merging neighbours; drops it when the table is full.</summary>
    private void AddRange(uint start, uint len)
    {
        uint end = start + len;
        for (int i = 0; i < _oooCount; i++)
        {
            if (Le(start, _oooEnd[i]) && Ge(end, _oooStart[i]))
            {
                if (Lt(start, _oooStart[i])) _oooStart[i] = start;
                if (Gt(end, _oooEnd[i])) _oooEnd[i] = end;
                // the grown range may now touch others: fold them in
                for (int j = _oooCount - 1; j >= 0; j--)
                {
                    if (j == i || !(Le(_oooStart[i], _oooEnd[j]) && Ge(_oooEnd[i], _oooStart[j]))) continue;
                    if (Lt(_oooStart[j], _oooStart[i])) _oooStart[i] = _oooStart[j];
                    if (Gt(_oooEnd[j], _oooEnd[i])) _oooEnd[i] = _oooEnd[j];
                    RemoveRange(j);
                    if (j < i) i--;
                }
                MoveToFront(i);
                return;
            }
        }
        if (_oooCount == MaxOutOfOrderRanges) return; // bounded: the peer will retransmit it
        _oooStart[_oooCount] = start;
        _oooEnd[_oooCount] = end;
        _oooCount++;
        MoveToFront(_oooCount - 1);
    }

    /// <summary>The most recently changed range goes first: RFC 2018 §4 wants it in the first SACK block.</summary>
    private void MoveToFront(int i)
    {
        uint s = _oooStart[i], e = _oooEnd[i];
        for (int k = i; k > 0; k--) { _oooStart[k] = _oooStart[k - 1]; _oooEnd[k] = _oooEnd[k - 1]; }
        _oooStart[0] = s; _oooEnd[0] = e;
    }

    private void RemoveRange(int i)
    {
        for (int k = i; k < _oooCount - 1; k++) { _oooStart[k] = _oooStart[k + 1]; _oooEnd[k] = _oooEnd[k + 1]; }
        _oooCount--;
    }

    /// <summary>Commits buffered out-of-order ranges that rcv_nxt has reached.</summary>
    private void AbsorbOutOfOrder()
    {
        bool progress = true;
        while (progress)
        {
            progress = false;
            for (int i = 0; i < _oooCount; i++)
            {
                if (Gt(_oooStart[i], _rcvNxt)) continue;
                if (Gt(_oooEnd[i], _rcvNxt))
                {
                    _rcv!.Commit((int)(_oooEnd[i] - _rcvNxt));
                    _rcvNxt = _oooEnd[i];
                }
                RemoveRange(i);
                progress = true;
                break;
            }
        }
    }

    private void ReceiveFin(TimeSpan now)
    {
        _finReceived = true;
        _rcvNxt++;
        switch (State)
        {
            case TcpState.Established: State = TcpState.CloseWait; break;
            case TcpState.FinWait1: State = _finAcked ? TcpState.TimeWait : TcpState.Closing; break;
            case TcpState.FinWait2: State = TcpState.TimeWait; break;
        }
        if (State == TcpState.TimeWait) EnterTimeWait(now);
        SendAck();
    }

    private void EnterTimeWait(TimeSpan now)
    {
        State = TcpState.TimeWait;
        _timeWaitUntil = now + _opt.TcpTimeWait;
        _rtoDeadline = _persistDeadline = TimeSpan.Zero;
    }
}
