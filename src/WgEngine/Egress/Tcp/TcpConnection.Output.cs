namespace WgEngine.Egress.Tcp;

/// <summary>
/// The sending half: ACK processing, congestion window (RFC 5681 Reno with NewReno recovery, RFC 6582),
/// retransmission (RFC 6298, Karn's rule), fast retransmit, zero-window persist probes, and segment output.
/// </summary>
internal sealed partial class TcpConnection
{
    // send state; the send ring's first byte has sequence number _sndBase
    private readonly uint _iss;
    private uint _sndUna, _sndNxt, _sndMax, _sndBase, _wl1, _wl2, _sndWnd;
    private readonly int _mss;
    private readonly int _sndScale;
    private readonly ushort _ourMss;
    private bool _hostEof, _finSent, _finAcked;
    private int _cwnd, _ssthresh, _dupAcks, _retries, _persistBackoff;
    private bool _inRecovery;
    private uint _recover;
    private RtoEstimator _rto;
    private bool _timing;
    private uint _timedSeq;
    private TimeSpan _timedAt, _rtoDeadline, _persistDeadline, _timeWaitUntil, _connectDeadline, _lastActivity;

    private uint FinSeq => _sndBase + (uint)_snd!.Count;

    /// <summary>Bytes of the send ring already sent at least once (up to snd_nxt, FIN excluded).</summary>
    private int SentData => (int)Math.Min((long)(_sndNxt - _sndBase), _snd!.Count);

    /// <summary>Processes the ACK field; false when the segment must be dropped (it acknowledges data never sent).</summary>
    private bool ProcessAck(scoped in TcpSegment seg, TimeSpan now)
    {
        uint ack = seg.Ack;
        if (Gt(ack, _sndMax)) { SendAck(); return false; } // RFC 9293 §3.10.7.4: ACK, drop
        if (_sackOk && !seg.SackBlocks.IsEmpty) RecordSack(seg.SackBlocks);
        uint segWnd = (uint)seg.Window << _sndScale;
        bool windowChanged = false;
        if (Lt(_wl1, seg.Seq) || (_wl1 == seg.Seq && Le(_wl2, ack)))
        {
            windowChanged = segWnd != _sndWnd;
            _sndWnd = segWnd;
            _wl1 = seg.Seq;
            _wl2 = ack;
        }

        if (Gt(ack, _sndUna))
        {
            int acked = (int)(ack - _sndUna);
            if (_timing && Ge(ack, _timedSeq)) { _rto.Sample(now - _timedAt); _timing = false; }
            int dataAcked = (int)Math.Clamp((long)(int)(ack - _sndBase), 0, _snd!.Count);
            if (dataAcked > 0) { _snd.Consume(dataAcked); _sndBase += (uint)dataAcked; }
            // our FIN went out at least once (snd_max passed it) and is now covered, even if a go-back unsent it
            if (_hostEof && ack == FinSeq + 1 && _sndMax == ack) { _finAcked = true; _finSent = true; }
            _sndUna = ack;
            if (Lt(_sndNxt, ack)) _sndNxt = ack;
            PruneSack();
            _retries = 0;
            _rto.ResetBackoff();
            if (_inRecovery)
            {
                if (Ge(ack, _recover)) { _inRecovery = false; _cwnd = _ssthresh; }
                else
                {
                    // partial ACK (RFC 6582): the next hole, unless SACK recovery already resent it
                    if (Gt(_rexmitNext, _sndUna)) RetransmitNextHole();
                    else _rexmitNext = _sndUna + (uint)RetransmitFirst();
                    _cwnd = Math.Max(_cwnd - acked + _mss, _mss);
                }
            }
            else if (_cwnd < _ssthresh) _cwnd += Math.Min(acked, _mss);                    // slow start
            else _cwnd += Math.Max(1, _mss * _mss / _cwnd);                                 // congestion avoidance
            _cwnd = Math.Min(_cwnd, 1 << 28);
            _dupAcks = 0;
            _rtoDeadline = _sndMax == _sndUna ? TimeSpan.Zero : now + _rto.Rto;

            if (_finAcked)
            {
                if (State == TcpState.FinWait1) State = TcpState.FinWait2;
                else if (State == TcpState.Closing) EnterTimeWait(now);
                else if (State == TcpState.LastAck) State = TcpState.Closed;
            }
        }
        else if (ack == _sndUna && seg.Payload.IsEmpty && !seg.Has(TcpFlags.Fin) && !windowChanged && Gt(_sndMax, _sndUna))
        {
            // a duplicate ACK (RFC 5681 §2): three in a row mean a lost segment
            _dupAcks++;
            if (_dupAcks == 3 && !_inRecovery)
            {
                _ssthresh = Math.Max((int)(_sndMax - _sndUna) / 2, 2 * _mss);
                _cwnd = _ssthresh + 3 * _mss;
                _recover = _sndMax;
                _inRecovery = true;
                _rexmitNext = _sndUna + (uint)RetransmitFirst();
            }
            // each further dup ACK: a segment left the network; it makes room for the next SACK hole, else new data
            else if (_inRecovery && _dupAcks > 3 && !RetransmitNextHole()) _cwnd += _mss;
        }
        if (_sndWnd > 0) { _persistDeadline = TimeSpan.Zero; _persistBackoff = 0; }
        return true;
    }

    /// <summary>Sends what the peer's window and the congestion window allow, then a FIN once the host is done.</summary>
    private void TrySend(TimeSpan now)
    {
        if (State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.LastAck or TcpState.Closing))
            return;
        int unsent;
        while (true)
        {
            int sent = SentData;
            unsent = _snd!.Count - sent;
            long flight = _sndNxt - _sndUna;
            long usable = Math.Min(_sndWnd, (long)_cwnd) - flight;
            if (unsent > 0)
            {
                int n = (int)Math.Min(Math.Min(unsent, _mss), usable);
                if (n <= 0) break;
                // sender SWS avoidance (RFC 9293 §3.8.6.2.1): no runt segment while the window, not the data, is short
                if (n < _mss && n < unsent && flight > 0) break;
                EmitData(_sndNxt, sent, n, now, retransmission: false);
                _sndNxt += (uint)n;
                if (Gt(_sndNxt, _sndMax)) _sndMax = _sndNxt;
                continue;
            }
            if (_hostEof && !_finSent && !_finAcked) SendFin(now);
            break;
        }
        if (unsent > 0 && _sndWnd == 0 && _sndNxt == _sndUna && _persistDeadline == TimeSpan.Zero)
            _persistDeadline = now + _rto.Rto;
    }

    private void SendFin(TimeSpan now)
    {
        _finSent = true;
        SendControl(_sndNxt, _rcvNxt, TcpFlags.Fin | TcpFlags.Ack, RcvWindow());
        _sndNxt++;
        if (Gt(_sndNxt, _sndMax)) _sndMax = _sndNxt;
        if (_rtoDeadline == TimeSpan.Zero) _rtoDeadline = now + _rto.Rto;
        if (State == TcpState.Established) State = TcpState.FinWait1;
        else if (State == TcpState.CloseWait) State = TcpState.LastAck;
    }

    /// <summary>Resends the first unacknowledged segment (data or FIN), ignoring the windows; stops RTT timing (Karn). Returns its data length.</summary>
    private int RetransmitFirst()
    {
        Interlocked.Increment(ref _counters.tcpRetransmits);
        _timing = false;
        int off = (int)(_sndUna - _sndBase);
        int len = Math.Min(_mss, Math.Min(_snd!.Count - off, (int)(_sndMax - _sndUna)));
        if (len > 0) EmitData(_sndUna, off, len, default, retransmission: true);
        else if (_finSent) SendControl(_sndUna, _rcvNxt, TcpFlags.Fin | TcpFlags.Ack, RcvWindow());
        return Math.Max(len, 0);
    }

    private void OnRetransmitTimeout(TimeSpan now)
    {
        if (State == TcpState.SynReceived)
        {
            if (++_retries > MaxSynAckRetries) { ResetBoth(); return; }
            Interlocked.Increment(ref _counters.tcpRetransmits);
            _rto.Backoff();
            _timing = false;
            SendSynAck();
            _rtoDeadline = now + _rto.Rto;
            return;
        }
        if (_sndMax == _sndUna) { _rtoDeadline = TimeSpan.Zero; return; }
        if (++_retries > MaxRetries) { ResetBoth(); return; }
        // RFC 5681 §3.1 eq. 4, RFC 6298 §5.5-5.6: halve, restart from one segment, back the timer off, go back to snd_una.
        _ssthresh = Math.Max((int)(_sndMax - _sndUna) / 2, 2 * _mss);
        _cwnd = _mss;
        _inRecovery = false;
        _dupAcks = 0;
        _rto.Backoff();
        _sackN = 0; // RFC 6675 §5.1: after an RTO the scoreboard is not trusted
        RetransmitFirst();
        int off = (int)(_sndUna - _sndBase);
        int len = Math.Min(_mss, Math.Min(_snd!.Count - off, (int)(_sndMax - _sndUna)));
        _sndNxt = _sndUna + (uint)Math.Max(len, 0);
        if (len > 0) _finSent = false;        // the FIN follows the resent data again
        else if (_finSent) _sndNxt++;         // the FIN itself went again
        _rtoDeadline = now + _rto.Rto;
    }

    private void OnPersistTimeout(TimeSpan now)
    {
        if (_sndWnd != 0 || _snd!.Count == SentData) { _persistDeadline = TimeSpan.Zero; return; }
        // Zero-window probe: an already-acknowledged sequence number makes the peer answer with its window.
        SendControl(_sndUna - 1, _rcvNxt, TcpFlags.Ack, RcvWindow());
        _persistBackoff = Math.Min(_persistBackoff + 1, 10);
        var next = _rto.Rto * (1 << _persistBackoff);
        _persistDeadline = now + (next > RtoEstimator.Max ? RtoEstimator.Max : next);
    }

    private void EmitData(uint seq, int ringOffset, int len, TimeSpan now, bool retransmission)
    {
        bool last = ringOffset + len == _snd!.Count;
        int hl = TcpPacketWriter.WriteHeaders(_tx, _remoteAddr, _peerAddr, _remotePort, _peerPort, seq, _rcvNxt,
            TcpFlags.Ack | (last ? TcpFlags.Psh : 0), RcvWindow(), TcpOptionsOut.None, len);
        _snd.CopyTo(ringOffset, _tx.AsSpan(hl, len));
        TcpPacketWriter.Finish(_tx, hl + len);
        _ackPending = 0;
        _out.Emit(_tx.AsSpan(0, hl + len));
        if (retransmission) return; // no RTT timing (Karn); the caller handles the timer
        if (!_timing && Ge(seq, _sndMax)) { _timing = true; _timedSeq = seq + (uint)len; _timedAt = now; }
        if (_rtoDeadline == TimeSpan.Zero) _rtoDeadline = now + _rto.Rto;
    }

    /// <summary>
    /// Our receive window for the header: free buffer space, scaled. Receiver SWS avoidance (RFC 1122
    /// §4.2.3.3): the right edge only moves on by at least min(buffer/2, MSS), so a slow host reader shows
    /// the peer a window shrinking to zero rather than a trickle of tiny windows.
    /// </summary>
    private ushort RcvWindow()
    {
        if (_rcv is null) return 0;
        uint candidate = _rcvNxt + (uint)_rcv.Free;
        if ((int)(candidate - _rcvAdvRight) >= SwsThreshold) _rcvAdvRight = candidate;
        int w = Lt(_rcvAdvRight, _rcvNxt) ? 0 : (int)(_rcvAdvRight - _rcvNxt);
        return (ushort)Math.Min(w >> _rcvScale, 65535);
    }

    private int SwsThreshold => Math.Min(_rcv!.Capacity / 2, _mss);

    /// <summary>True when the window we could advertise now is enough larger than the last one to be worth an update.</summary>
    private bool WindowUpdateDue => _rcv is not null && (int)(_rcvNxt + (uint)_rcv.Free - _rcvAdvRight) >= SwsThreshold;

    private void SendSynAck()
    {
        int w = Math.Min(_opt.TcpBufferBytes, 65535); // a SYN's window is never scaled
        _rcvAdvRight = _rcvNxt + (uint)w;
        var opts = new TcpOptionsOut { Mss = _ourMss, WindowScale = _wscaleOk ? _rcvScale : -1, SackPermitted = _sackOk };
        int n = TcpPacketWriter.WriteControl(_tx, _remoteAddr, _peerAddr, _remotePort, _peerPort, _iss, _rcvNxt,
            TcpFlags.Syn | TcpFlags.Ack, (ushort)w, opts);
        _out.Emit(_tx.AsSpan(0, n));
    }

    /// <summary>A bare ACK with the current window and, when the peer allows, SACK blocks for held out-of-order data.</summary>
    private void SendAck()
    {
        Span<uint> sack = stackalloc uint[6];
        scoped var opts = TcpOptionsOut.None;
        if (_sackOk && _oooCount > 0)
        {
            int blocks = Math.Min(_oooCount, 3);
            for (int i = 0; i < blocks; i++) { sack[2 * i] = _oooStart[i]; sack[2 * i + 1] = _oooEnd[i]; }
            opts.Sack = sack.Slice(0, 2 * blocks);
        }
        int n = TcpPacketWriter.WriteControl(_tx, _remoteAddr, _peerAddr, _remotePort, _peerPort, _sndNxt, _rcvNxt,
            TcpFlags.Ack, RcvWindow(), opts);
        _ackPending = 0;
        _out.Emit(_tx.AsSpan(0, n));
    }

    private void SendControl(uint seq, uint ack, TcpFlags flags, ushort window)
    {
        int n = TcpPacketWriter.WriteControl(_tx, _remoteAddr, _peerAddr, _remotePort, _peerPort, seq, ack, flags, window, TcpOptionsOut.None);
        if ((flags & (TcpFlags.Ack | TcpFlags.Fin)) != 0) _ackPending = 0;
        _out.Emit(_tx.AsSpan(0, n));
    }
}
