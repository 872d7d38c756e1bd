using System.Collections;
using System.Globalization;
using System.Management.Automation;
using WgEngine.Egress;

namespace WgPowerShell.Validation;

/// <summary>
/// Turns the egress parameters of Start-/Set-WgServer (-EgressAllow, -EgressDeny, -EgressUnprotected,
/// -EgressLimit) into engine options. Bad input throws a terminating error with a stable id before
/// anything is changed.
/// </summary>
internal static class EgressParameters
{
    /// <summary>The -EgressLimit keys: the limits of <see cref="EgressOptions"/>.</summary>
    public static readonly string[] LimitKeys =
    [
        nameof(EgressOptions.MaxTcpConnectionsPerPeer), nameof(EgressOptions.MaxTcpConnections),
        nameof(EgressOptions.MaxUdpFlowsPerPeer), nameof(EgressOptions.MaxUdpFlows), nameof(EgressOptions.TcpBufferBytes),
        nameof(EgressOptions.TcpConnectTimeout), nameof(EgressOptions.TcpIdleTimeout), nameof(EgressOptions.TcpTimeWait),
        nameof(EgressOptions.UdpIdleTimeout),
    ];

    /// <summary>The options for Start-WgServer; null when none of the parameters was given (engine defaults).</summary>
    public static EgressOptions? ToOptions(string[]? allow, string[]? deny, bool unprotected, Hashtable? limits)
    {
        if (allow is null && deny is null && !unprotected && limits is null) return null;
        var options = new EgressOptions { Allow = Parse.Prefixes(allow), Deny = Parse.Prefixes(deny), Unprotected = unprotected };
        return limits is null ? options : WithLimits(options, limits);
    }

    private static EgressOptions WithLimits(EgressOptions o, Hashtable limits)
    {
        foreach (DictionaryEntry e in limits)
        {
            string key = LimitKeys.FirstOrDefault(k => string.Equals(k, e.Key?.ToString(), StringComparison.OrdinalIgnoreCase))
                ?? throw Bad("EgressLimitUnknownKey", $"-EgressLimit has no key '{e.Key}'; the keys are {string.Join(", ", LimitKeys)}.", e.Key);
            object? value = e.Value is PSObject ps ? ps.BaseObject : e.Value;
            if (key.EndsWith("Timeout", StringComparison.Ordinal) || key == nameof(EgressOptions.TcpTimeWait))
            {
                var t = Duration(key, value);
                o = key switch
                {
                    nameof(EgressOptions.TcpConnectTimeout) => o with { TcpConnectTimeout = t },
                    nameof(EgressOptions.TcpIdleTimeout) => o with { TcpIdleTimeout = t },
                    nameof(EgressOptions.TcpTimeWait) => o with { TcpTimeWait = t },
                    _ => o with { UdpIdleTimeout = t },
                };
                continue;
            }
            int n = Count(key, value, key == nameof(EgressOptions.TcpBufferBytes) ? 4096 : 1);
            o = key switch
            {
                nameof(EgressOptions.MaxTcpConnectionsPerPeer) => o with { MaxTcpConnectionsPerPeer = n },
                nameof(EgressOptions.MaxTcpConnections) => o with { MaxTcpConnections = n },
                nameof(EgressOptions.MaxUdpFlowsPerPeer) => o with { MaxUdpFlowsPerPeer = n },
                nameof(EgressOptions.MaxUdpFlows) => o with { MaxUdpFlows = n },
                _ => o with { TcpBufferBytes = n },
            };
        }
        return o;
    }

    private static int Count(string key, object? value, int min)
    {
        try
        {
            long n = Convert.ToInt64(value, CultureInfo.InvariantCulture);
            if (n >= min && n <= int.MaxValue) return (int)n;
        }
        catch (Exception ex) when (ex is FormatException or InvalidCastException or OverflowException) { }
        throw Bad("EgressLimitInvalidValue", $"-EgressLimit {key} must be a whole number from {min} to {int.MaxValue}; '{value}' is not.", value);
    }

    private static TimeSpan Duration(string key, object? value)
    {
        TimeSpan? t = value switch
        {
            TimeSpan ts => ts,
            string s when TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out var parsed) => parsed,
            int or long or double => TimeSpan.FromSeconds(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
            _ => null,
        };
        if (t is { } d && d > TimeSpan.Zero && d <= TimeSpan.FromDays(1)) return d;
        throw Bad("EgressLimitInvalidValue", $"-EgressLimit {key} must be a TimeSpan, 'hh:mm:ss' or seconds, above 0 and at most one day; '{value}' is not.", value);
    }

    private static EgressParameterException Bad(string id, string message, object? target) => new(id, message, target);
}

/// <summary>A bad -EgressLimit entry: the cmdlet turns it into a terminating error with <see cref="ErrorId"/>.</summary>
internal sealed class EgressParameterException(string errorId, string message, object? target) : ArgumentException(message)
{
    public string ErrorId { get; } = errorId;

    public ErrorRecord ToErrorRecord() => new(this, ErrorId, ErrorCategory.InvalidArgument, target);
}
