using System.Globalization;

namespace WgPowerShell.Formatting;

/// <summary>
/// Short human texts for the format views (called from WireGuardGateway.format.ps1xml): handshake age,
/// byte counts, short keys. Invariant culture so the columns read the same everywhere.
/// </summary>
public static class WgDisplay
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB"];

    /// <summary>"42 s ago", "5 min ago", "3 h ago", "2 d ago"; "never" for null. A time in the future (clock skew) is "0 s ago".</summary>
    public static string Ago(DateTimeOffset? time, DateTimeOffset now)
    {
        if (time is null) return "never";
        var span = now - time.Value;
        if (span < TimeSpan.Zero) span = TimeSpan.Zero;
        long s = (long)span.TotalSeconds;
        if (s < 60) return $"{s} s ago";
        if (s < 3600) return $"{s / 60} min ago";
        if (s < 86400) return $"{s / 3600} h ago";
        return $"{s / 86400} d ago";
    }

    /// <summary>The age from now (UTC).</summary>
    public static string Ago(DateTimeOffset? time) => Ago(time, DateTimeOffset.UtcNow);

    /// <summary>1024-based: "0 B", "512 B", "1.2 MiB", "340 KiB" (one decimal below 10, none above).</summary>
    public static string Bytes(long bytes)
    {
        if (bytes < 0) bytes = 0;
        if (bytes < 1024) return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        double v = bytes;
        int unit = 0;
        while (v >= 1024 && unit < Units.Length - 1) { v /= 1024; unit++; }
        // Promote when rounding reaches the next unit (1023.7 KiB shows as 1.0 MiB, not 1024 KiB).
        if (Math.Round(v) >= 1024 && unit < Units.Length - 1) { v /= 1024; unit++; }
        string number = v < 9.95
            ? v.ToString("0.0", CultureInfo.InvariantCulture)
            : Math.Round(v).ToString("0", CultureInfo.InvariantCulture);
        return number + " " + Units[unit];
    }

    /// <summary>"received / sent", e.g. "1.2 MiB / 340 KiB".</summary>
    public static string Transfer(long received, long sent) => Bytes(received) + " / " + Bytes(sent);

    /// <summary>First 8 characters of a base64 key and an ellipsis: enough to tell keys apart at a glance.</summary>
    public static string ShortKey(string? key) =>
        string.IsNullOrEmpty(key) ? "" : key.Length > 8 ? key[..8] + "…" : key;
}
