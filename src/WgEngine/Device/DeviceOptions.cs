using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Device;

internal sealed class DeviceOptions
{
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    /// <summary>The gateway's own tunnel addresses: ICMP echo to these is answered.</summary>
    public IReadOnlyList<IpPrefix> Addresses { get; init; } = [];
    /// <summary>Crypto workers; default one per core.</summary>
    public int Workers { get; init; } = Environment.ProcessorCount;
    /// <summary>Threads that help seal large outgoing batches and open long runs of received packets
    /// (CryptoHelperPool, one pool for both directions); null = its default (none below 4 cores, else half the cores
    /// minus one, at most 7; WIREGUARDGATEWAY_SEAL_THREADS overrides); 0 = every batch is sealed on the thread that
    /// flushes it and every received packet opened by its worker, one at a time.</summary>
    public int? CryptoHelperThreads { get; init; }
    public int Mtu { get; init; } = 1420;
    public IEgress? Egress { get; init; }
    /// <summary>Isolation and ACLs between this device and its packet planes; null = created on first use.</summary>
    public Policy.TrafficPolicy? Policy { get; init; }
    /// <summary>Told once per exhaustion, on a packet thread, when a peer's quota is used up (its traffic is then dropped).</summary>
    public Action<WgKey>? QuotaExhausted { get; init; }
    /// <summary>How often timers are checked.</summary>
    public TimeSpan TimerTick { get; init; } = TimeSpan.FromMilliseconds(100);
    /// <summary>Packet buffers (4 KiB each) made at start, so that the first bursts do not allocate.</summary>
    public int PreallocatedBuffers { get; init; } = 256;
    /// <summary>Handshake messages the handshake thread may have queued; more are dropped.</summary>
    public int HandshakeQueueSize { get; init; } = 4096;
    /// <summary>
    /// Queued handshake messages at which the device is under load: from then on (and for one second
    /// after) a handshake needs a valid mac2, else it gets a cookie reply, and sources are rate limited.
    /// Null: HandshakeQueueSize / 8, wireguard-go's rule (512 by default, about 0.1 s of full handshakes
    /// at the responder's measured ~190 us each: see docs/performance.md, "Handshake flood").
    /// 0 puts the device under load permanently (tests).
    /// </summary>
    public int? HandshakeLoadThreshold { get; init; }
    /// <summary>
    /// A transport packet that arrives alone (a receive call returned one datagram) is decrypted on the
    /// receive thread when its worker is idle, instead of waking the worker: one thread hop less for
    /// sparse traffic (ping, interactive sessions). Bursts still go to the workers. Environment variable
    /// WIREGUARDGATEWAY_INLINE_RX=0 turns it off (for A/B benchmarks).
    /// </summary>
    public bool InlineLonePackets { get; init; } = Environment.GetEnvironmentVariable("WIREGUARDGATEWAY_INLINE_RX") != "0";
    /// <summary>
    /// The receive thread decrypts and routes a whole batch's packets of one worker itself when that worker is
    /// idle, instead of queueing them and waking it: on a machine with two cores every such hand-off is a
    /// context switch (the site-to-site profile's largest kernel cost). Packets of other workers still go to
    /// them. On by default up to 2 cores, and never with crypto helpers (<see cref="CryptoHelperThreads"/>), whose
    /// parallel open is the worker's; WIREGUARDGATEWAY_INLINE_BATCHES=0/1 overrides (for A/B benchmarks).
    /// </summary>
    public bool InlineBatches { get; init; } = Environment.GetEnvironmentVariable("WIREGUARDGATEWAY_INLINE_BATCHES") is { } v
        ? v != "0" : Environment.ProcessorCount <= 2;
}

/// <summary>Device-wide counters; drops are counted by reason and never answered.</summary>
internal sealed class DeviceCounters
{
    internal long ReceivedBytes, SentBytes;
    internal long DroppedMalformed, DroppedBadMac1, DroppedUnknownIndex, DroppedAuthFailed, DroppedReplay,
        DroppedAllowedIps, DroppedNoRoute, DroppedHandshakeInvalid, DroppedHandshakeReplay, DroppedQueueFull,
        DroppedExpiredKey, DroppedRateLimited, HandshakesCompleted, CookieRepliesSent, IcmpEchoReplies, DroppedPolicy, DroppedRateLimitedData, DroppedQuota;
    // Batch sizes reached: bind calls and the datagrams they carried (sendmmsg/GSO out, recvmmsg/GRO in).
    /// <summary>Packets for a peer without a session here that the relay took (a fleet's mesh).</summary>
    internal long RelayedPackets;
    internal long SendBatchCalls, SendBatchDatagrams, ReceiveBatchCalls, ReceiveBatchDatagrams;
    /// <summary>Receive batches whose packets of one worker the receive thread processed itself (DeviceOptions.InlineBatches).</summary>
    internal long InlineReceiveBatchCalls;

    public long Received => Volatile.Read(ref ReceivedBytes);
    public long Sent => Volatile.Read(ref SentBytes);
    public long Malformed => Volatile.Read(ref DroppedMalformed);
    public long BadMac1 => Volatile.Read(ref DroppedBadMac1);
    public long UnknownIndex => Volatile.Read(ref DroppedUnknownIndex);
    public long AuthFailed => Volatile.Read(ref DroppedAuthFailed);
    public long Replayed => Volatile.Read(ref DroppedReplay);
    public long NotAllowedSource => Volatile.Read(ref DroppedAllowedIps);
    public long NoRoute => Volatile.Read(ref DroppedNoRoute);
    /// <summary>Packets refused by isolation or an ACL (answered with ICMP prohibited where possible).</summary>
    public long Policy => Volatile.Read(ref DroppedPolicy);
    /// <summary>Data packets over a peer's bandwidth limit (either direction).</summary>
    public long RateLimitedData => Volatile.Read(ref DroppedRateLimitedData);
    /// <summary>Data packets of a peer whose quota is used up.</summary>
    public long QuotaExceeded => Volatile.Read(ref DroppedQuota);
    public long HandshakeInvalid => Volatile.Read(ref DroppedHandshakeInvalid);
    public long HandshakeReplayed => Volatile.Read(ref DroppedHandshakeReplay);
    public long QueueFull => Volatile.Read(ref DroppedQueueFull);
    public long ExpiredKey => Volatile.Read(ref DroppedExpiredKey);
    /// <summary>Handshakes over the per-source rate limit while under load.</summary>
    public long RateLimited => Volatile.Read(ref DroppedRateLimited);
    public long Relayed => Volatile.Read(ref RelayedPackets);
    public long Handshakes => Volatile.Read(ref HandshakesCompleted);
    public long SendBatches => Volatile.Read(ref SendBatchCalls);
    public long SentInBatches => Volatile.Read(ref SendBatchDatagrams);
    public long ReceiveBatches => Volatile.Read(ref ReceiveBatchCalls);
    public long InlineReceiveBatches => Volatile.Read(ref InlineReceiveBatchCalls);
    public long ReceivedInBatches => Volatile.Read(ref ReceiveBatchDatagrams);
    public long CookieReplies => Volatile.Read(ref CookieRepliesSent);
    public long EchoReplies => Volatile.Read(ref IcmpEchoReplies);
    public long TotalDropped => Malformed + BadMac1 + UnknownIndex + AuthFailed + Replayed + NotAllowedSource
        + NoRoute + HandshakeInvalid + HandshakeReplayed + QueueFull + ExpiredKey + RateLimited + Policy + RateLimitedData + QuotaExceeded;

    /// <summary>Every drop counter by its name (the reasons <see cref="TotalDropped"/> adds up).</summary>
    public Dictionary<string, long> DropsByReason() => new()
    {
        [nameof(Malformed)] = Malformed, [nameof(BadMac1)] = BadMac1, [nameof(UnknownIndex)] = UnknownIndex,
        [nameof(AuthFailed)] = AuthFailed, [nameof(Replayed)] = Replayed, [nameof(NotAllowedSource)] = NotAllowedSource,
        [nameof(NoRoute)] = NoRoute, [nameof(HandshakeInvalid)] = HandshakeInvalid, [nameof(HandshakeReplayed)] = HandshakeReplayed,
        [nameof(QueueFull)] = QueueFull, [nameof(ExpiredKey)] = ExpiredKey, [nameof(RateLimited)] = RateLimited,
        [nameof(Policy)] = Policy, [nameof(RateLimitedData)] = RateLimitedData, [nameof(QuotaExceeded)] = QuotaExceeded,
    };
}
