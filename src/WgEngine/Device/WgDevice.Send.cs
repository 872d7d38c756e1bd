using System.Buffers.Binary;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Noise;
using WgEngine.Session;

namespace WgEngine.Device;

internal sealed partial class WgDevice
{
    /// <summary>
    /// Encrypts the IP packet held in buf (at offset 16, buf.Length bytes; 0 = keepalive) for the peer
    /// and sends it; takes ownership of buf. Without a usable session the packet is staged and a
    /// handshake started (whitepaper §6.1).
    /// </summary>
    private void SendToPeer(Peer peer, PacketBuffer buf)
    {
        if (buf.Length > 0 && !DownloadAllowed(peer, buf.Length, out bool byQuota))
        {
            if (byQuota) _pool.Return(buf);
            else Drop(buf, ref Counters.DroppedRateLimitedData);
            return;
        }
        long now = Now;
        var session = peer.Session;
        if (!session.TryTakeSendCounter(now, _times, out var kp, out ulong counter))
        {
            Stage(peer, buf);
            InitiateHandshake(peer, retry: false);
            return;
        }
        var ep = peer.Endpoint;
        if (ep is null)
        {
            Drop(buf, ref Counters.DroppedNoRoute);
            return;
        }

        int length = buf.Length;
        var data = buf.Data.AsSpan();
        int padded = PaddedLength(length, _options.Mtu);
        var batch = t_outgoing;
        if (batch is not null && ReferenceEquals(batch.Owner, this))
        {
            // A batching thread: sealed and sent with the rest of this wake-up's packets (FlushOutgoing).
            int framed = kp.FrameTransport(counter, data, length, padded);
            batch.Add(buf, framed, ep, peer, length > 0, kp, counter, padded);
            if (batch.IsFull) FlushOutgoing(batch);
        }
        else
        {
            int total = kp.SealTransport(counter, data, length, padded);
            if (_bind.Send(data[..total], ep)) OnSent(peer, total, length > 0, now);
            _pool.Return(buf);
        }

        if (PeerSession.RekeyDue(kp, counter, now, _times)) InitiateHandshake(peer, retry: false);
    }

    // The calling thread's pending sends: a crypto worker's for its lifetime, another thread's between
    // BeginSendBatch and EndSendBatch; null otherwise (each send is then one bind call).
    [ThreadStatic] private static OutgoingBatch? t_outgoing;

    // Batches lent to non-worker threads, reused so that a scope allocates nothing in steady state.
    private readonly System.Collections.Concurrent.ConcurrentQueue<OutgoingBatch> _spareBatches = new();

    /// <summary>Makes the calling thread (a crypto worker) collect its sends for <see cref="FlushOutgoing"/>.</summary>
    /// <summary>Makes the calling thread (a crypto worker) collect its sends for <see cref="FlushOutgoing"/>,
    /// and its egress packets too when the egress takes batches.</summary>
    internal void BeginOutgoingBatches()
    {
        t_outgoing = new OutgoingBatch(this);
        t_egress = _options.Egress is IBatchEgress batching ? new EgressBatch(this, batching.CreateBatch()) : null;
    }

    /// <summary>Sends what the calling thread collected, in one bind call, then accounts for each datagram;
    /// writes what it collected for the egress.</summary>
    internal void FlushOutgoing()
    {
        if (t_egress is { } egress && ReferenceEquals(egress.Owner, this)) egress.Batch.Flush();
        if (t_outgoing is { Count: > 0 } batch && ReferenceEquals(batch.Owner, this)) FlushOutgoing(batch);
    }

    /// <summary>A crypto worker's egress collector (<see cref="IBatchEgress"/>), for its device.</summary>
    private sealed record EgressBatch(WgDevice Owner, IEgressBatch Batch);

    // The calling worker's egress collector; null on other threads (they deliver packet by packet).
    [ThreadStatic] private static EgressBatch? t_egress;

    /// <summary>
    /// Makes the calling thread (TUN reader, egress pump, handshake thread, timer) collect the datagrams
    /// it sends through this device until <see cref="EndSendBatch"/>, which sends them in one bind call
    /// (sendmmsg, GSO). True when this call opened the scope: the caller must then call EndSendBatch on
    /// the same thread before it blocks, or the collected datagrams wait. False (nothing to end) when the
    /// thread already collects (a worker, a nested scope) or collects for another device.
    /// </summary>
    public bool BeginSendBatch()
    {
        if (t_outgoing is not null) return false;
        if (!_spareBatches.TryDequeue(out var batch)) batch = new OutgoingBatch(this);
        t_outgoing = batch;
        return true;
    }

    /// <summary>Sends what the scope opened by <see cref="BeginSendBatch"/> collected and closes it.</summary>
    public void EndSendBatch()
    {
        var batch = t_outgoing;
        if (batch is null || !ReferenceEquals(batch.Owner, this)) return;
        t_outgoing = null;
        try
        {
            if (batch.Count > 0) FlushOutgoing(batch);
        }
        finally
        {
            _spareBatches.Enqueue(batch);
        }
    }

    private void FlushOutgoing(OutgoingBatch batch)
    {
        int count = batch.Count;
        Interlocked.Increment(ref Counters.SendBatchCalls);
        Interlocked.Add(ref Counters.SendBatchDatagrams, count);
        try
        {
            // Nothing leaves before every packet of the batch is sealed; a failed seal sends none of them.
            _helpers.SealAll(batch);
            _bind.SendBatch(batch.Datagrams.AsSpan(0, count), batch.To.AsSpan(0, count), batch.Sent.AsSpan(0, count));
            long now = Now;
            for (int i = 0; i < count; i++)
                if (batch.Sent[i]) OnSent(batch.Peers[i], batch.Datagrams[i].Length, batch.CarriesData[i], now);
        }
        finally
        {
            // Whatever happened, the buffers go back and the batch starts empty.
            for (int i = 0; i < count; i++) _pool.Return(batch.Buffers[i]);
            batch.Clear();
        }
    }

    private void OnSent(Peer peer, int bytes, bool carriesData, long now)
    {
        Interlocked.Add(ref Counters.SentBytes, bytes);
        Interlocked.Add(ref peer.SentBytes, bytes);
        peer.Timers.AuthenticatedPacketSent(now);
        if (carriesData && peer.Timers.DataSent(now)) MarkTimersDue(peer);
    }

    /// <summary>Pads to a multiple of 16 but never past the MTU (whitepaper §5.4.6) or the buffer.</summary>
    internal static int PaddedLength(int length, int mtu) => PeerSession.PaddedLength(length, mtu, PacketBuffer.Capacity);

    private void SendKeepalive(Peer peer)
    {
        var buf = _pool.Rent();
        buf.Length = 0;
        SendToPeer(peer, buf);
    }

    private void Stage(Peer peer, PacketBuffer buf)
    {
        if (buf.Length == 0 || peer.Removed)
        {
            _pool.Return(buf); // keepalives are not worth keeping
            return;
        }
        if (Interlocked.Increment(ref peer.StagedCount) > ProtocolConstants.MaxStagedPackets)
        {
            Interlocked.Decrement(ref peer.StagedCount);
            Drop(buf, ref Counters.DroppedQueueFull);
            return;
        }
        peer.Staged.Enqueue(buf);
    }

    /// <summary>Sends what waited for a session, as one batch (the queue can hold a burst). True when at
    /// least one packet went out.</summary>
    private bool FlushStaged(Peer peer)
    {
        bool any = false;
        bool scope = BeginSendBatch();
        try
        {
            int n = Volatile.Read(ref peer.StagedCount);
            for (int i = 0; i < n && peer.Keypairs.Current is not null && peer.Staged.TryDequeue(out var buf); i++)
            {
                Interlocked.Decrement(ref peer.StagedCount);
                SendToPeer(peer, buf);
                any = true;
            }
        }
        finally
        {
            if (scope) EndSendBatch();
        }
        return any;
    }
}
