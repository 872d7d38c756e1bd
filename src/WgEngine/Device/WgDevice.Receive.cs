using System.Buffers.Binary;
using WgEngine.Conn;
using WgEngine.Crypto;
using WgEngine.Noise;
using WgEngine.PacketPlane;
using WgEngine.Session;

namespace WgEngine.Device;

internal sealed partial class WgDevice
{
    internal void ReturnBuffer(PacketBuffer buffer) => _pool.Return(buffer);
    /// <summary>A buffer from the device's pool (tests feed Dispatch with it, as the receive thread does).</summary>
    internal PacketBuffer RentBuffer() => _pool.Rent();
    internal void CountMalformed() => Interlocked.Increment(ref Counters.DroppedMalformed);

    private long _receiveThreadAllocated;
    internal long BuffersCreated => _pool.Created;

    /// <summary>Bytes allocated so far by the device's own packet threads (receive, crypto workers and their helpers, handshake).</summary>
    internal long PacketThreadAllocatedBytes
    {
        get
        {
            long sum = Volatile.Read(ref _receiveThreadAllocated) + _handshakes.AllocatedBytes + _helpers.HelperAllocatedBytes;
            foreach (var w in _workers) sum += w.AllocatedBytes;
            return sum;
        }
    }

    /// <summary>Datagrams the receive thread asks the bind for per call (recvmmsg on Linux).</summary>
    /// 128 (wireguard-go's IdealBatchSize): a worker coalesces what one wake-up gives it into TUN writes, and a
    /// TCP super-packet is up to ~47 segments; a batch cuts one super-packet's segments into two writes, so
    /// the larger the batch the fewer such cuts.
    internal const int ReceiveBatchSize = 128;

    /// <summary>
    /// The receive thread: takes datagrams from the bind in batches, classifies each by type and size,
    /// checks mac1 of handshake messages here (cheap, before any queueing or DH), and hands transport
    /// packets to their peer's worker. It holds one batch of pooled buffers and replaces each one it
    /// hands on, so the bind always has a full batch to fill.
    /// </summary>
    private void ReceiveLoop()
    {
        var bufs = new PacketBuffer[ReceiveBatchSize];
        var memory = new Memory<byte>[ReceiveBatchSize];
        var from = new System.Net.SocketAddress[ReceiveBatchSize];
        var lengths = new int[ReceiveBatchSize];
        for (int i = 0; i < bufs.Length; i++) Refill(bufs, memory, from, i);
        // Inline batches: this thread collects what it sends and writes, as a worker does, and flushes per batch.
        // Not with crypto helpers: there a worker opens a burst on several cores, which this thread would forgo.
        var inline = _options.InlineBatches && !OpensInParallel ? new InlineBatch() : null;
        if (inline is not null) BeginOutgoingBatches();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int n = _bind.ReceiveBatch(memory, from, lengths);
                if (n < 0) break;
                if (n > 0)
                {
                    Interlocked.Increment(ref Counters.ReceiveBatchCalls);
                    Interlocked.Add(ref Counters.ReceiveBatchDatagrams, n);
                }
                long bytes = 0;
                ulong wake = 0;
                for (int i = 0; i < n; i++)
                {
                    var buf = bufs[i];
                    buf.Length = lengths[i];
                    bytes += buf.Length;
                    Refill(bufs, memory, from, i);
                    // A lone datagram (low rate) may skip the hand-off to its worker; a batch is spread over them.
                    Dispatch(buf, inline is null && n == 1 && _options.InlineLonePackets, ref wake, inline);
                }
                if (inline is not null)
                {
                    // Before the worker may run again: its writes must not overtake this batch's.
                    FlushOutgoing();
                    if (inline.Worker is not null) Interlocked.Increment(ref Counters.InlineReceiveBatchCalls);
                    inline.End();
                }
                WakeWorkers(wake);
                Interlocked.Add(ref Counters.ReceivedBytes, bytes);
                Volatile.Write(ref _receiveThreadAllocated, GC.GetAllocatedBytesForCurrentThread());
            }
        }
        finally
        {
            foreach (var b in bufs) _pool.Return(b);
        }
    }

    private void Refill(PacketBuffer[] bufs, Memory<byte>[] memory, System.Net.SocketAddress[] from, int i)
    {
        var fresh = _pool.Rent();
        bufs[i] = fresh;
        memory[i] = fresh.Data;
        from[i] = fresh.Address;
    }

    /// <summary>Routes one received datagram. Also the entry point for in-process tests.</summary>
    internal void Dispatch(PacketBuffer buf, bool inline = false)
    {
        ulong wake = 0;
        Dispatch(buf, inline, ref wake, null);
        WakeWorkers(wake);
    }

    /// <summary>The worker whose place the receive thread holds for the current batch (<see cref="DeviceOptions.InlineBatches"/>).</summary>
    private sealed class InlineBatch
    {
        public Worker? Worker;
        public bool Tried;

        public void End()
        {
            Worker?.EndInline();
            Worker = null;
            Tried = false;
        }
    }

    /// <summary>Wakes the workers whose bits are set in <paramref name="wake"/> (see <see cref="Dispatch(PacketBuffer, bool, ref ulong, InlineBatch)"/>).</summary>
    private void WakeWorkers(ulong wake)
    {
        while (wake != 0)
        {
            int w = System.Numerics.BitOperations.TrailingZeroCount(wake);
            _workers[w].Wake();
            wake &= wake - 1;
        }
    }

    /// <summary>Routes one received datagram. A transport packet queued for a worker sets that worker's bit in
    /// <paramref name="wake"/> instead of waking it, so that a batch wakes each worker once (workers past
    /// the 64th are woken per packet).</summary>
    private void Dispatch(PacketBuffer buf, bool inline, ref ulong wake, InlineBatch? batch)
    {
        var data = buf.Span;
        switch (MessageLayout.ReadType(data))
        {
            case MessageLayout.TypeTransport when data.Length >= MessageLayout.TransportMinSize:
                uint receiver = BinaryPrimitives.ReadUInt32LittleEndian(data[MessageLayout.TransportReceiverOffset..]);
                if (!_indices.TryGet(receiver, out var entry) || entry.Keypair is null)
                {
                    Drop(buf, ref Counters.DroppedUnknownIndex);
                    return;
                }
                buf.Keypair = entry.Keypair;
                buf.Peer = entry.Peer;
                int w = entry.Peer.Worker;
                var worker = _workers[w];
                if (inline && worker.TryProcessInline(buf)) return;
                if (batch is not null)
                {
                    // The batch's first transport packet decides: its worker idle, this thread takes its place.
                    if (!batch.Tried)
                    {
                        batch.Tried = true;
                        if (worker.TryBeginInline()) batch.Worker = worker;
                    }
                    if (ReferenceEquals(batch.Worker, worker))
                    {
                        worker.ProcessInline(buf);
                        return;
                    }
                }
                bool deferred = w < 64;
                if (!worker.TryEnqueue(buf, wake: !deferred)) Drop(buf, ref Counters.DroppedQueueFull);
                else if (deferred) wake |= 1UL << w;
                return;

            case MessageLayout.TypeInitiation when data.Length == MessageLayout.InitiationSize:
            case MessageLayout.TypeResponse when data.Length == MessageLayout.ResponseSize:
                if (!_cookieChecker.CheckMac1(data))
                {
                    Drop(buf, ref Counters.DroppedBadMac1);
                    return;
                }
                if (!_handshakes.TryEnqueue(buf)) Drop(buf, ref Counters.DroppedQueueFull);
                return;

            case MessageLayout.TypeCookieReply when data.Length == MessageLayout.CookieReplySize:
                if (!_handshakes.TryEnqueue(buf)) Drop(buf, ref Counters.DroppedQueueFull);
                return;

            default:
                Drop(buf, ref Counters.DroppedMalformed);
                return;
        }
    }

    private void Drop(PacketBuffer buf, ref long counter)
    {
        Interlocked.Increment(ref counter);
        _pool.Return(buf);
    }

    /// <summary>Worker: the session core authenticates, replay-checks and confirms (Session.PeerSession);
    /// here the result is carried out: roam, account, source-check, route.</summary>
    internal void ProcessTransport(PacketBuffer buf)
    {
        var peer = buf.Peer!;
        if (peer.Removed)
        {
            Drop(buf, ref Counters.DroppedExpiredKey);
            return;
        }
        long now = Now;
        var received = peer.Session.ReceiveTransport(buf.Keypair!, buf.Data.AsSpan(0, buf.Length), now, _times);
        CarryOut(peer, buf, received, now);
    }

    /// <summary>
    /// Worker with crypto helpers: a run of consecutive packets on one keypair (<see cref="IncomingRun"/>). The
    /// expiry is the keypair's, so it is judged once; the packets are opened on several cores when the run is long
    /// enough (pure: <see cref="PeerSession.Open"/>); then each is accepted and carried out in queue order, exactly
    /// as <see cref="ProcessTransport"/> does: a forged packet is dropped alone, a counter seen earlier in the same
    /// run is refused by the replay window, the first packet on a new keypair confirms it. The run's buffers are
    /// all handed on (run.Handed counts them) when this returns.
    /// </summary>
    internal void ProcessTransportRun(IncomingRun run)
    {
        var first = run.Buffers[0];
        if (run.Count == 1)
        {
            run.Handed = 1;
            ProcessTransport(first);
            return;
        }
        var peer = first.Peer!;
        var keypair = first.Keypair!;
        long now = Now;
        if (peer.Removed || PeerSession.IsExpired(keypair, now, _times))
        {
            while (run.Handed < run.Count) Drop(run.Buffers[run.Handed++], ref Counters.DroppedExpiredKey);
            return;
        }
        _helpers.OpenAll(run);
        while (run.Handed < run.Count)
        {
            int i = run.Handed++;
            var buf = run.Buffers[i];
            if (!run.Authentic[i])
            {
                Drop(buf, ref Counters.DroppedAuthFailed);
                continue;
            }
            var received = peer.Session.Accept(keypair, buf.Data.AsSpan(0, buf.Length), run.PlaintextLength[i], now, _times);
            CarryOut(peer, buf, received, now);
        }
    }

    /// <summary>What the session made of one received packet, carried out: drops counted, roaming, accounting,
    /// confirmation, the source check and routing.</summary>
    private void CarryOut(Peer peer, PacketBuffer buf, in TransportReceived received, long now)
    {
        switch (received.Verdict)
        {
            case TransportVerdict.Expired: Drop(buf, ref Counters.DroppedExpiredKey); return;
            case TransportVerdict.AuthFailed: Drop(buf, ref Counters.DroppedAuthFailed); return;
            case TransportVerdict.Replayed: Drop(buf, ref Counters.DroppedReplay); return;
        }

        UpdateEndpoint(peer, buf);
        Interlocked.Add(ref peer.ReceivedBytes, buf.Length);
        if (received.ConfirmedSession)
        {
            OnHandshakeComplete(peer);   // the responder's key confirmation
            FlushStaged(peer);
        }
        if (received.WantsHandshake) InitiateHandshake(peer, retry: false);

        if (received.Verdict == TransportVerdict.Keepalive)
        {
            _pool.Return(buf);
            return;
        }

        var plain = buf.Data.AsSpan(MessageLayout.TransportHeaderSize, received.PlaintextLength);
        if (!IpHeader.TryParse(plain, out var ip))
        {
            Drop(buf, ref Counters.DroppedMalformed);
            return;
        }
        int ipLength = ip.TotalLength;
        if (!ReferenceEquals(_allowedIps.Lookup(ip.Source(plain)), peer))
        {
            Drop(buf, ref Counters.DroppedAllowedIps);
            return;
        }
        if (peer.Timers.DataReceived(now)) MarkTimersDue(peer);
        buf.Length = ipLength;
        Route(peer, buf);
    }

    /// <summary>Roaming (whitepaper §2.1): an authenticated packet from a new address moves the peer there.</summary>
    private void UpdateEndpoint(Peer peer, PacketBuffer buf)
    {
        var current = peer.Endpoint;
        if (current is not null && current.SameAs(buf.Address)) return;
        peer.Endpoint = buf.Address.Copy();
        // A first endpoint starts the persistent keepalive.
        if (current is null && peer.PersistentKeepaliveSeconds > 0) MarkTimersDue(peer);
    }
}
