namespace WgEngine.Egress.Tcp;

/// <summary>
/// Retransmission timeout from RTT samples, RFC 6298: SRTT/RTTVAR with alpha 1/8, beta 1/4, K 4,
/// initial RTO 1 s, doubled per timeout (backoff), clamped to [200 ms, 60 s] (200 ms as Linux's
/// TCP_RTO_MIN; RFC 6298 §2.4 allows a lower minimum than 1 s).
/// </summary>
internal struct RtoEstimator
{
    public static readonly TimeSpan Min = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan Max = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan Initial = TimeSpan.FromSeconds(1);

    private TimeSpan _srtt, _rttvar, _base;
    private int _backoff;

    public readonly bool HasSample => _srtt > TimeSpan.Zero;
    public readonly TimeSpan Srtt => _srtt;
    public readonly TimeSpan RttVar => _rttvar;
    public readonly int Backoffs => _backoff;

    /// <summary>The current timeout, backoff included.</summary>
    public readonly TimeSpan Rto
    {
        get
        {
            var b = _base == TimeSpan.Zero ? Initial : _base;
            for (int i = 0; i < _backoff && b < Max; i++) b += b;
            return b > Max ? Max : b;
        }
    }

    /// <summary>A round-trip sample of a segment that was not retransmitted (Karn's rule is the caller's).</summary>
    public void Sample(TimeSpan rtt)
    {
        if (rtt <= TimeSpan.Zero) rtt = TimeSpan.FromTicks(1);
        if (!HasSample)
        {
            _srtt = rtt;
            _rttvar = rtt / 2;
        }
        else
        {
            var err = _srtt - rtt;
            if (err < TimeSpan.Zero) err = -err;
            _rttvar = _rttvar * 0.75 + err * 0.25;
            _srtt = _srtt * 0.875 + rtt * 0.125;
        }
        var rto = _srtt + _rttvar * 4;
        _base = rto < Min ? Min : rto > Max ? Max : rto;
        _backoff = 0;
    }

    /// <summary>A timeout fired: double the RTO (RFC 6298 §5.5).</summary>
    public void Backoff() => _backoff++;

    /// <summary>New data was acknowledged: forget the backoff (RFC 6298 §5.7 keeps the doubled value until a sample; Linux resets it on progress).</summary>
    public void ResetBackoff() => _backoff = 0;
}
