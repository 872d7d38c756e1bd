namespace WgEngine.Egress;

/// <summary>What the userspace egress did and refused; read with Volatile semantics.</summary>
public sealed class EgressCounters
{
    internal long tcpOpened, tcpActive, tcpRefused, tcpUnreachable, tcpLimited, tcpResets, tcpRetransmits,
        udpFlowsOpened, udpFlowsActive, udpLimited, icmpEchoSent, icmpEchoReplies, icmpUnavailable, icmpLimited,
        denied, malformed, unsupported;

    public long TcpOpened => Volatile.Read(ref tcpOpened);
    public long TcpActive => Volatile.Read(ref tcpActive);
    /// <summary>Host-side connects refused (the peer got a RST).</summary>
    public long TcpRefused => Volatile.Read(ref tcpRefused);
    /// <summary>Host-side connects that timed out or found no route (the peer got ICMP unreachable or RST).</summary>
    public long TcpUnreachable => Volatile.Read(ref tcpUnreachable);
    /// <summary>SYNs refused by a connection limit.</summary>
    public long TcpLimited => Volatile.Read(ref tcpLimited);
    public long TcpResets => Volatile.Read(ref tcpResets);
    public long TcpRetransmits => Volatile.Read(ref tcpRetransmits);
    public long UdpFlowsOpened => Volatile.Read(ref udpFlowsOpened);
    public long UdpFlowsActive => Volatile.Read(ref udpFlowsActive);
    public long UdpLimited => Volatile.Read(ref udpLimited);
    public long IcmpEchoSent => Volatile.Read(ref icmpEchoSent);
    public long IcmpEchoReplies => Volatile.Read(ref icmpEchoReplies);
    /// <summary>Echo requests dropped because the host allows no unprivileged ICMP sockets (net.ipv4.ping_group_range).</summary>
    public long IcmpUnavailable => Volatile.Read(ref icmpUnavailable);
    /// <summary>Echo requests dropped because the peer (or everyone) has the most ping mappings allowed (the UDP flow limits).</summary>
    public long IcmpLimited => Volatile.Read(ref icmpLimited);
    /// <summary>Packets to destinations outside the egress allow list.</summary>
    public long Denied => Volatile.Read(ref denied);
    public long Malformed => Volatile.Read(ref malformed);
    /// <summary>Protocols other than TCP, UDP and ICMP echo.</summary>
    public long Unsupported => Volatile.Read(ref unsupported);

    /// <summary>Every counter by its name (TcpActive and UdpFlowsActive are gauges).</summary>
    public Dictionary<string, long> Snapshot() => new()
    {
        [nameof(TcpOpened)] = TcpOpened, [nameof(TcpActive)] = TcpActive, [nameof(TcpRefused)] = TcpRefused,
        [nameof(TcpUnreachable)] = TcpUnreachable, [nameof(TcpLimited)] = TcpLimited, [nameof(TcpResets)] = TcpResets,
        [nameof(TcpRetransmits)] = TcpRetransmits, [nameof(UdpFlowsOpened)] = UdpFlowsOpened, [nameof(UdpFlowsActive)] = UdpFlowsActive,
        [nameof(UdpLimited)] = UdpLimited, [nameof(IcmpEchoSent)] = IcmpEchoSent, [nameof(IcmpEchoReplies)] = IcmpEchoReplies,
        [nameof(IcmpUnavailable)] = IcmpUnavailable, [nameof(IcmpLimited)] = IcmpLimited, [nameof(Denied)] = Denied,
        [nameof(Malformed)] = Malformed, [nameof(Unsupported)] = Unsupported,
    };
}
