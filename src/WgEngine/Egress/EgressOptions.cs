using WgEngine.Net;

namespace WgEngine.Egress;

/// <summary>Limits and timeouts of the userspace egress. Every limit is counted when it bites (EgressCounters).</summary>
public sealed class EgressOptions
{
    /// <summary>Destinations the peers may reach; null = everything except the host's loopback,
    /// link-local, multicast and unspecified addresses (see <see cref="EgressPolicy"/>).</summary>
    public IReadOnlyList<IpPrefix>? Allow { get; init; }

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
