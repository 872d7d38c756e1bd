using WgEngine.Contracts;
using WgEngine.Policy;

namespace WgEngine.Gateway;

/// <summary>
/// The checks of a peer's tags, bandwidth limits and quota, with their errors (InvalidTag, InvalidRateLimit,
/// InvalidQuota): one definition for every store that accepts peers (the server and its config file, the fleet
/// registry), so a value one accepts is never refused by another later.
/// </summary>
public static class PeerChecks
{
    /// <summary>The tags, each valid (<see cref="PeerTag.IsValid"/>), without duplicates (case-insensitive); InvalidTag otherwise.</summary>
    public static IReadOnlyList<string> Tags(IReadOnlyList<string>? tags)
    {
        if (tags is null) return [];
        foreach (var t in tags)
            if (!PeerTag.IsValid(t))
                throw new WgException(WgErrorKind.InvalidArgument, "InvalidTag", $"Tag '{(t?.Length > 40 ? t[..40] + "..." : t)}' is not 1-32 letters, digits, '-', '_' or '.'.");
        return [.. tags.Distinct(StringComparer.OrdinalIgnoreCase)];
    }

    /// <summary>A rate within <see cref="RateLimit.MinBitsPerSecond"/>-<see cref="RateLimit.MaxBitsPerSecond"/> and a burst of 0-4 GiB; InvalidRateLimit otherwise.</summary>
    public static RateLimit? Limit(RateLimit? limit)
    {
        if (limit is not { } l) return null;
        if (l.BitsPerSecond is < RateLimit.MinBitsPerSecond or > RateLimit.MaxBitsPerSecond || l.BurstBytes < 0 || l.BurstBytes > 1L << 32)
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidRateLimit",
                $"A rate limit is {RateLimit.MinBitsPerSecond}-{RateLimit.MaxBitsPerSecond} bit/s with a burst of 0 (default) to 4 GiB; {l} is not.");
        return l;
    }

    /// <summary>A quota with a positive size and a defined period; InvalidQuota otherwise.</summary>
    public static DataQuota? Quota(DataQuota? quota)
    {
        if (quota is not { } q) return null;
        if (q.Bytes <= 0 || !Enum.IsDefined(q.Period))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidQuota", $"A quota needs a positive number of bytes and a period (Total, Day, Week, Month); {q} is not.");
        return q;
    }
}
