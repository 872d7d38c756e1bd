namespace WgEngine.Contracts;

/// <summary>
/// One snapshot of every counter a server's engine keeps: traffic, handshakes, each drop reason, and the
/// counters of the userspace egress, the TUN egress and the traffic policy when the engine has them. What
/// exporters (Prometheus) and APIs read. Counters only grow, except the "Active" ones of the egress (gauges).
/// </summary>
public sealed record ServerMetrics
{
    public long ReceivedBytes { get; init; }
    public long SentBytes { get; init; }
    public long HandshakesCompleted { get; init; }
    /// <summary>Cookie replies sent instead of a handshake response while under load.</summary>
    public long CookieRepliesSent { get; init; }
    /// <summary>ICMP echo requests to the gateway's own addresses answered.</summary>
    public long IcmpEchoReplies { get; init; }
    /// <summary>Batched sends to the bind (sendmmsg, with GSO runs) and the datagrams they carried: their ratio is
    /// the send batch size reached.</summary>
    public long SendBatches { get; init; }
    public long SentInBatches { get; init; }
    /// <summary>Receive calls that returned datagrams (recvmmsg, with GRO) and the datagrams they returned.</summary>
    public long ReceiveBatches { get; init; }
    public long ReceivedInBatches { get; init; }
    /// <summary>Of the datagrams received, those that arrived coalesced by UDP GRO (several datagrams of one
    /// sender in one receive, split by the bind); 0 where the bind does not do GRO.</summary>
    public long ReceivedCoalesced { get; init; }
    /// <summary>Receive batches whose packets the receive thread decrypted and routed itself instead of handing
    /// them to an idle worker (on by default up to 2 cores).</summary>
    public long InlineReceiveBatches { get; init; }
    /// <summary>Outgoing batches whose packets were sealed on more than one core (one busy peer, e.g. a TUN
    /// super-packet: issue 15 item 3).</summary>
    public long ParallelSealBatches { get; init; }
    /// <summary>Runs of one keypair's received packets whose decryption was shared among more than one core (the
    /// receive side of issue 15 item 3: a GRO'd burst of one busy peer).</summary>
    public long ParallelOpenBatches { get; init; }
    /// <summary>Packets dropped, by reason (every reason the engine counts, zeros included; names as in Device.DeviceCounters).</summary>
    public IReadOnlyDictionary<string, long> Drops { get; init; } = new Dictionary<string, long>();
    /// <summary>The sum of <see cref="Drops"/>.</summary>
    public long DroppedPackets => Drops.Values.Sum();
    /// <summary>The userspace egress's counters by name (Egress.EgressCounters); null without one.</summary>
    public IReadOnlyDictionary<string, long>? Egress { get; init; }
    /// <summary>The TUN egress's counters by name (Tun.TunCounters); null without one.</summary>
    public IReadOnlyDictionary<string, long>? Tun { get; init; }
    /// <summary>The traffic policy's counters (Denied, RepliesAllowed); null when the engine enforces none.</summary>
    public IReadOnlyDictionary<string, long>? Policy { get; init; }
}

/// <summary>A backend that can report every counter (<see cref="ServerMetrics"/>); the others report only InterfaceStats.</summary>
internal interface IMetricsSource
{
    ServerMetrics GetMetrics();
}
