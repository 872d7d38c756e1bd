namespace WgEngine.Policy;

/// <summary>The period a <see cref="DataQuota"/> counts over; calendar periods in UTC (weeks start on Monday).</summary>
public enum QuotaPeriod { Total, Day, Week, Month }

/// <summary>How many bytes (both directions together) a peer may move per period before it is disabled.</summary>
public readonly record struct DataQuota(long Bytes, QuotaPeriod Period = QuotaPeriod.Month)
{
    /// <summary>The start of the period that contains <paramref name="now"/> (Total: the epoch).</summary>
    public DateTimeOffset PeriodStart(DateTimeOffset now)
    {
        var d = now.UtcDateTime.Date;
        return Period switch
        {
            QuotaPeriod.Day => new DateTimeOffset(d, TimeSpan.Zero),
            QuotaPeriod.Week => new DateTimeOffset(d.AddDays(-(((int)d.DayOfWeek + 6) % 7)), TimeSpan.Zero),
            QuotaPeriod.Month => new DateTimeOffset(d.Year, d.Month, 1, 0, 0, 0, TimeSpan.Zero),
            _ => DateTimeOffset.UnixEpoch,
        };
    }
}
