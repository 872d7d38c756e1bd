namespace WgEngine.Policy;

/// <summary>A bandwidth limit: a sustained rate and the burst allowed above it.</summary>
/// <param name="BitsPerSecond">The sustained rate, at least 8000 (1 kB/s).</param>
/// <param name="BurstBytes">What may pass at once above the rate; 0 = the default (half a second at the rate, at least 64 KiB).</param>
public readonly record struct RateLimit(long BitsPerSecond, long BurstBytes = 0)
{
    public const long MinBitsPerSecond = 8000, MaxBitsPerSecond = 100_000_000_000;

    /// <summary>The burst in force: the given one, or half a second at the rate (at least 64 KiB).</summary>
    public long EffectiveBurstBytes => BurstBytes > 0 ? BurstBytes : Math.Max(64 * 1024, BitsPerSecond / 8 / 2);

    public override string ToString() => $"{BitsPerSecond} bit/s, burst {EffectiveBurstBytes} B";
}

/// <summary>
/// A token bucket over the injected clock: it fills at the rate up to the burst, and a packet passes when
/// its bytes are in it. Tokens are kept in bytes x clock frequency, so no rounding loses any; one short
/// lock per packet, no allocation. A refused packet is dropped: TCP backs off and, with a burst of
/// half a second (the default), settles near the rate (measured by the iperf3 interop test, docs/policy.md).
/// </summary>
internal sealed class TokenBucket
{
    private readonly TimeProvider _time;
    private readonly long _perSecond;      // bytes per second
    private readonly long _capacity;       // burst in bytes x frequency
    private readonly long _frequency;
    private readonly Lock _lock = new();
    private long _tokens;
    private long _last;

    public TokenBucket(RateLimit limit, TimeProvider time)
    {
        if (limit.BitsPerSecond is < RateLimit.MinBitsPerSecond or > RateLimit.MaxBitsPerSecond)
            throw new ArgumentOutOfRangeException(nameof(limit), $"A rate is {RateLimit.MinBitsPerSecond}-{RateLimit.MaxBitsPerSecond} bit/s.");
        Limit = limit;
        _time = time;
        _frequency = time.TimestampFrequency;
        _perSecond = limit.BitsPerSecond / 8;
        long burst = limit.EffectiveBurstBytes;
        _capacity = burst > long.MaxValue / _frequency ? long.MaxValue : burst * _frequency;
        _tokens = _capacity;   // starts full
        _last = time.GetTimestamp();
    }

    public RateLimit Limit { get; }

    /// <summary>Takes the bytes of one packet; false (nothing taken) when the bucket holds fewer.</summary>
    public bool TryTake(int bytes)
    {
        long need = bytes * _frequency;
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            long elapsed = now - _last;
            _last = now;
            if (elapsed > 0)
            {
                long room = _capacity - _tokens;
                _tokens = elapsed >= room / _perSecond + 1 ? _capacity : Math.Min(_capacity, _tokens + elapsed * _perSecond);
            }
            if (_tokens < need) return false;
            _tokens -= need;
            return true;
        }
    }
}

/// <summary>A peer's limits, by direction as the peer sees it: upload = what it sends, download = what it receives.</summary>
internal sealed class PeerLimits(TokenBucket? upload, TokenBucket? download)
{
    public TokenBucket? Upload { get; } = upload;
    public TokenBucket? Download { get; } = download;
}
