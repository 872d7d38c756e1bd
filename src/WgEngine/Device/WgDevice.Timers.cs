using System.Collections.Concurrent;

namespace WgEngine.Device;

internal sealed partial class WgDevice
{
    private int _sweeping;
    // Peers that may have a timer due: only these are visited. A peer joins through MarkTimersDue when one
    // of its timer fields leaves its idle value, and leaves when a sweep finds it idle, so 100,000 idle
    // peers cost nothing per tick. _timerPeers belongs to the sweeping thread (_sweeping).
    private readonly ConcurrentQueue<Peer> _timersDue = new();
    private readonly List<Peer> _timerPeers = new();

    /// <summary>
    /// One sweep per tick over the peers that may have a timer due, instead of timer objects per peer.
    /// Implements the whitepaper's §6 timers: handshake retransmission and give-up, passive and persistent
    /// keepalives, a new handshake when data went unanswered, and erasing keys of a silent peer.
    /// </summary>
    internal void SweepTimers()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 1) return;
        bool batch = BeginSendBatch();   // keepalives of many peers leave together (WgDevice.Send.cs)
        try
        {
            long now = Now;
            while (_timersDue.TryDequeue(out var joined)) _timerPeers.Add(joined);
            for (int i = 0; i < _timerPeers.Count;)
            {
                var peer = _timerPeers[i];
                if (!peer.Removed) SweepPeer(peer, now);
                if (!peer.Removed && !IsIdle(peer)) { i++; continue; }
                // Off the list: clear the flag first, then look again. A packet thread sets a field before it
                // tries to set the flag, and both sides use full fences, so either this second look sees its
                // change (the peer stays) or its MarkTimersDue sees the flag clear (the peer comes back queued).
                Interlocked.Exchange(ref peer.TimerListed, 0);
                if (!peer.Removed && !IsIdle(peer) && Interlocked.CompareExchange(ref peer.TimerListed, 1, 0) == 0) { i++; continue; }
                _timerPeers[i] = _timerPeers[^1];
                _timerPeers.RemoveAt(_timerPeers.Count - 1);
            }
        }
        finally
        {
            if (batch) EndSendBatch();
            Volatile.Write(ref _sweeping, 0);
        }
    }

    /// <summary>Peers the sweep visits now (tests and diagnostics; racy by nature).</summary>
    internal int TimerPeerCount => _timerPeers.Count + _timersDue.Count;

    /// <summary>
    /// Puts the peer on the sweep's list. Call after the field that made it non-idle was written: the
    /// Interlocked exchange orders that write before the flag is read.
    /// </summary>
    private void MarkTimersDue(Peer peer)
    {
        if (Interlocked.CompareExchange(ref peer.TimerListed, 1, 0) == 0) _timersDue.Enqueue(peer);
    }

    private void SweepPeer(Peer peer, long now)
    {
        if (IsIdle(peer)) return;
        // Retransmit an unanswered initiation every Rekey-Timeout (+ jitter). Like wireguard-go and the
        // kernel, give up once more than MaxTimerHandshakes retries went unanswered (20 initiations in
        // all, ~90-100 s), dropping what was staged.
        bool retransmit = false, giveUp = false;
        lock (peer.HandshakeLock)
        {
            if (peer.State == HandshakeState.InitiationCreated && now >= peer.RetransmitAt)
            {
                if (peer.HandshakeAttempts > ProtocolConstants.MaxTimerHandshakes)
                {
                    giveUp = true;
                    _indices.Remove(peer.HandshakeLocalIndex);
                    peer.State = HandshakeState.Zeroed;
                    peer.Noise.Clear();
                    Array.Clear(peer.LocalEphemeral);
                }
                else
                {
                    peer.HandshakeAttempts++;
                    retransmit = true;
                }
            }
        }
        if (giveUp)
        {
            Volatile.Write(ref peer.KeepaliveOwedSince, 0);
            while (peer.Staged.TryDequeue(out var b)) { Interlocked.Decrement(ref peer.StagedCount); _pool.Return(b); }
            return;
        }
        if (retransmit)
        {
            InitiateHandshake(peer, retry: true);
            return;
        }

        // Passive keepalive: data arrived and we have sent nothing for Keepalive-Timeout.
        long owedSince = Volatile.Read(ref peer.KeepaliveOwedSince);
        if (owedSince != 0 && peer.Current is not null && Older(owedSince, now, ProtocolConstants.KeepaliveTimeout))
        {
            SendKeepalive(peer);
            return;
        }
        // Data sent but nothing heard for Keepalive-Timeout + Rekey-Timeout: the session may be dead.
        long unanswered = Volatile.Read(ref peer.UnansweredSince);
        if (unanswered != 0 && Older(unanswered, now, ProtocolConstants.KeepaliveTimeout + ProtocolConstants.RekeyTimeout))
        {
            Volatile.Write(ref peer.UnansweredSince, 0);
            InitiateHandshake(peer, retry: false);
            return;
        }
        // Persistent keepalive: after the interval without any authenticated packet either way.
        if (peer.PersistentKeepaliveSeconds > 0 && peer.Endpoint is not null)
        {
            long last = Math.Max(Volatile.Read(ref peer.LastSentAt), Volatile.Read(ref peer.LastReceivedAt));
            if (last == 0 || Older(last, now, TimeSpan.FromSeconds(peer.PersistentKeepaliveSeconds)))
            {
                SendKeepalive(peer);
                return;
            }
        }
        // Erase all key material after 3 x Reject-After-Time without a new session.
        long derived = Volatile.Read(ref peer.SessionDerivedAt);
        if (derived != 0 && Older(derived, now, ProtocolConstants.ZeroKeysAfter))
        {
            if (HasKeys(peer)) ZeroPeer(peer);
            // Nothing left to erase: the peer is idle again unless a new session was derived meanwhile.
            Interlocked.CompareExchange(ref peer.SessionDerivedAt, 0, derived);
        }
    }

    /// <summary>
    /// Nothing can be due: no handshake in flight, no keepalive owed, no unanswered data, no persistent
    /// keepalive, no keys to erase. Most peers of a large gateway look like this, and checking it takes no
    /// lock, so a sweep over 100,000 idle peers stays cheap. The reads race with the packet threads; a peer
    /// that changes right after is seen by the next tick (100 ms), well inside every timer's tolerance.
    /// </summary>
    private static bool IsIdle(Peer p) =>
        Volatile.Read(ref p.SessionDerivedAt) == 0
        && Volatile.Read(ref p.KeepaliveOwedSince) == 0
        && Volatile.Read(ref p.UnansweredSince) == 0
        && (p.PersistentKeepaliveSeconds == 0 || p.Endpoint is null)
        && p.State == HandshakeState.Zeroed;

    private static bool HasKeys(Peer p) =>
        p.Current is not null || p.Previous is not null || p.Next is not null || p.State != HandshakeState.Zeroed;

    // Timer events, named as in the whitepaper and wireguard-go's timers.go.

    /// <summary>Any authenticated packet sent (transport, keepalive or handshake message).</summary>
    private void OnAuthenticatedPacketSent(Peer peer, long now)
    {
        Volatile.Write(ref peer.LastSentAt, now);
        Volatile.Write(ref peer.KeepaliveOwedSince, 0);
    }

    /// <summary>Any authenticated packet received (transport, keepalive or handshake message).</summary>
    private static void OnAuthenticatedPacketReceived(Peer peer, long now)
    {
        Volatile.Write(ref peer.LastReceivedAt, now);
        Volatile.Write(ref peer.UnansweredSince, 0);
    }

    /// <summary>New keys on either side: the key-erasure clock restarts (3 x Reject-After-Time).</summary>
    private void OnSessionDerived(Peer peer, long now)
    {
        Volatile.Write(ref peer.SessionDerivedAt, now);
        MarkTimersDue(peer);
    }

    /// <summary>
    /// A handshake is complete: the initiator got the response, or the responder got the first packet
    /// under the new keys. Only then is it the latest handshake (as wireguard-go reports it).
    /// </summary>
    private void OnHandshakeComplete(Peer peer)
    {
        peer.HandshakeAttempts = 0;
        peer.SentLastMinuteHandshake = false;
        Volatile.Write(ref peer.LastHandshakeUnixMs, _time.GetUtcNow().ToUnixTimeMilliseconds());
        Interlocked.Increment(ref Counters.HandshakesCompleted);
    }

    // Only a field's change from 0 can make an idle peer due, so only then is the list touched.
    private void OnDataSent(Peer peer, long now)
    {
        if (Volatile.Read(ref peer.UnansweredSince) != 0) return;
        Volatile.Write(ref peer.UnansweredSince, now);
        MarkTimersDue(peer);
    }

    private void OnDataReceived(Peer peer, long now)
    {
        if (Volatile.Read(ref peer.KeepaliveOwedSince) != 0) return;
        Volatile.Write(ref peer.KeepaliveOwedSince, now);
        MarkTimersDue(peer);
    }
}
