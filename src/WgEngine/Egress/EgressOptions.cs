using WgEngine.Net;

namespace WgEngine.Egress;

/// <summary>Limits and timeouts of the userspace egress. Every limit is counted when it bites (EgressCounters).</summary>
public sealed record EgressOptions
{
    /// <summary>Exceptions to the built-in refusals (e.g. an office subnet); see <see cref="EgressPolicy"/>
    /// for how they combine: the most specific entry wins.</summary>
    public IReadOnlyList<IpPrefix>? Allow { get; init; }

    /// <summary>Destinations refused on top of the built-in ones.</summary>
    public IReadOnlyList<IpPrefix>? Deny { get; init; }

    /// <summary>True drops the built-in refusals (special-purpose ranges, the host's own addresses): only
    /// <see cref="Allow"/>/<see cref="Deny"/> apply. The gateway's own tunnel addresses stay refused.</summary>
    public bool Unprotected { get; init; }

    /// <summary>The host's own addresses, refused by default; null = every interface's (tests inject them).</summary>
    public Func<IEnumerable<System.Net.IPAddress>>? HostAddresses { get; init; }

    public int MaxTcpConnectionsPerPeer { get; init; } = 512;
    public int MaxTcpConnections { get; init; } = 16384;
    public int MaxUdpFlowsPerPeer { get; init; } = 512;
    public int MaxUdpFlows { get; init; } = 16384;

    /// <summary>Bytes buffered per TCP flow and direction (also the window advertised to the peer).</summary>
    public int TcpBufferBytes { get; init; } = 256 * 1024;
    /// <summary>A host-side connect that takes longer is abandoned and the peer gets a RST.</summary>
    public TimeSpan TcpConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>An established flow with no traffic either way for this long is reset.</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromMinutes(30);
    /// <summary>TIME_WAIT duration (2*MSL; Linux uses 60 s).</summary>
    public TimeSpan TcpTimeWait { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>A UDP mapping with no traffic for this long is closed (RFC 4787 asks for at least 2 min; DNS-only flows may go sooner).</summary>
    public TimeSpan UdpIdleTimeout { get; init; } = TimeSpan.FromMinutes(2);

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
