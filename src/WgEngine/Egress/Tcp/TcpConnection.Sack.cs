using System.Buffers.Binary;

namespace WgEngine.Egress.Tcp;

/// <summary>
/// Sender-side SACK (RFC 2018, simplified RFC 6675): a small scoreboard of what the peer holds above
/// snd_una, so that during fast recovery each duplicate ACK resends the next hole below the highest SACKed
/// byte instead of one hole per round trip.
/// </summary>
internal sealed partial class TcpConnection
{
    private const int MaxSacked = 4;
    private readonly uint[] _sackS = new uint[MaxSacked], _sackE = new uint[MaxSacked];
    private int _sackN;
    private uint _rexmitNext; // in recovery: holes below this were resent already

    private void RecordSack(ReadOnlySpan<byte> blocks)
    {
        for (int b = 0; b + 8 <= blocks.Length; b += 8)
        {
            uint l = BinaryPrimitives.ReadUInt32BigEndian(blocks.Slice(b));
            uint r = BinaryPrimitives.ReadUInt32BigEndian(blocks.Slice(b + 4));
            if (!Gt(r, l) || Le(r, _sndUna) || Gt(r, _sndMax)) continue; // stale or bogus (RFC 2018 §4: ignore)
            if (Lt(l, _sndUna)) l = _sndUna;
            int i = 0;
            for (; i < _sackN; i++)
            {
                if (Gt(l, _sackE[i]) || Lt(r, _sackS[i])) continue;
                if (Lt(l, _sackS[i])) _sackS[i] = l;
                if (Gt(r, _sackE[i])) _sackE[i] = r;
                break;
            }
            if (i == _sackN && _sackN < MaxSacked) { _sackS[_sackN] = l; _sackE[_sackN] = r; _sackN++; }
        }
    }

    /// <summary>Forgets what snd_una has passed.</summary>
    private void PruneSack()
    {
        for (int i = _sackN - 1; i >= 0; i--)
        {
            if (Le(_sackE[i], _sndUna))
            {
                _sackN--;
                _sackS[i] = _sackS[_sackN];
                _sackE[i] = _sackE[_sackN];
            }
            else if (Lt(_sackS[i], _sndUna)) _sackS[i] = _sndUna;
        }
    }

    /// <summary>Resends up to one MSS of the lowest hole at or above _rexmitNext that lies below SACKed data. False if there is none.</summary>
    private bool RetransmitNextHole()
    {
        if (_sackN == 0) return false;
        uint highest = _sackE[0];
        for (int i = 1; i < _sackN; i++) if (Gt(_sackE[i], highest)) highest = _sackE[i];
        uint seq = Gt(_rexmitNext, _sndUna) ? _rexmitNext : _sndUna;
        for (bool moved = true; moved;)
        {
            moved = false;
            for (int i = 0; i < _sackN; i++)
                if (Le(_sackS[i], seq) && Lt(seq, _sackE[i])) { seq = _sackE[i]; moved = true; }
        }
        if (!Lt(seq, highest)) return false;
        uint limit = highest;
        for (int i = 0; i < _sackN; i++) if (Gt(_sackS[i], seq) && Lt(_sackS[i], limit)) limit = _sackS[i];
        int off = (int)(seq - _sndBase);
        int len = Math.Min(Math.Min(_mss, (int)(limit - seq)), _snd!.Count - off);
        if (len <= 0) return false;
        Interlocked.Increment(ref _counters.tcpRetransmits);
        _timing = false;
        EmitData(seq, off, len, default, retransmission: true);
        _rexmitNext = seq + (uint)len;
        return true;
    }
}
