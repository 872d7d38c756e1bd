using System.Net;
using System.Net.Sockets;

namespace WgEngine.Tests.TestSupport;

/// <summary>What a test needs from the host beyond the test process itself.</summary>
[Flags]
public enum HostNeeds
{
    None = 0,
    /// <summary>Linux (/proc, ping sockets, namespaces).</summary>
    Linux = 1,
    /// <summary>Unix file modes (not Windows).</summary>
    Unix = 2,
    /// <summary>Network namespaces the test creates itself: Linux, root and ip(8).</summary>
    Namespaces = 4,
    /// <summary>An IPv6 loopback address to bind to.</summary>
    Ipv6Loopback = 8,
}

/// <summary>
/// Whether the host has what a test needs. A test that cannot run here is skipped visibly, with the
/// reason, instead of returning early and counting as passed; under CI=true (where .ci/run provides
/// everything) it is never skipped, so a missing requirement fails it instead of hiding.
/// </summary>
public static class HostRequirements
{
    public static bool IsCI => Environment.GetEnvironmentVariable("CI") == "true";

    /// <summary>The first of <paramref name="needs"/> this host lacks, as a phrase, or null if it has them all.</summary>
    public static string? Missing(HostNeeds needs)
    {
        if (needs.HasFlag(HostNeeds.Linux) && !OperatingSystem.IsLinux()) return "Linux";
        if (needs.HasFlag(HostNeeds.Unix) && OperatingSystem.IsWindows()) return "Unix file modes (not Windows)";
        if (needs.HasFlag(HostNeeds.Namespaces))
        {
            if (!OperatingSystem.IsLinux()) return "network namespaces (Linux)";
            if (!Environment.IsPrivilegedProcess) return "root (to create network namespaces)";
            if (!new[] { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" }.Any(File.Exists)) return "ip(8)";
        }
        if (needs.HasFlag(HostNeeds.Ipv6Loopback) && !HasIPv6Loopback()) return "an IPv6 loopback address (::1)";
        return null;
    }

    /// <summary>The skip reason for a test with these needs: null (run it) under CI or when nothing is missing.</summary>
    public static string? SkipReason(HostNeeds needs, bool ci, Func<HostNeeds, string?> missing) =>
        ci ? null : missing(needs) is { } what ? $"SKIPPED: needs {what}" : null;

    public static bool HasIPv6Loopback()
    {
        try
        {
            using var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            return true;
        }
        catch (SocketException) { return false; }
    }
}

/// <summary>A fact that needs something of the host (<see cref="HostNeeds"/>): skipped with the reason where it
/// is missing, except under CI=true, where it runs and fails instead.</summary>
public sealed class HostFactAttribute : FactAttribute
{
    public HostFactAttribute(HostNeeds needs) =>
        Skip = HostRequirements.SkipReason(needs, HostRequirements.IsCI, HostRequirements.Missing);
}
