using System.Collections.Concurrent;
using WgEngine.Session;

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

    /// <summary>Asks the peer's timers what is due (Session.PeerTimers.Tick) and does it.</summary>
    private void SweepPeer(Peer peer, long now)
    {
        if (IsIdle(peer)) return;
        TimerAction action;
        lock (peer.Session.Lock) action = peer.Session.Tick(now, peer.PersistentKeepaliveSeconds, peer.Endpoint is not null, _times);
        switch (action)
        {
            case TimerAction.GiveUpHandshake:
                while (peer.Staged.TryDequeue(out var b)) { Interlocked.Decrement(ref peer.StagedCount); _pool.Return(b); }
                break;
            case TimerAction.RetransmitInitiation:
                InitiateHandshake(peer, retry: true);
                break;
            case TimerAction.NewHandshake:
                InitiateHandshake(peer, retry: false);
                break;
            case TimerAction.SendKeepalive:
                SendKeepalive(peer);
                break;
            case TimerAction.EraseKeys:
                ZeroPeer(peer);
                peer.Timers.KeysErased(now, _times);
                break;
        }
    }

    /// <summary>
    /// Nothing can be due (Session.PeerTimers.IsIdle plus the handshake state). Most peers of a large
    /// gateway look like this, and checking it takes no lock, so a sweep over 100,000 idle peers stays cheap.
    /// </summary>
    private static bool IsIdle(Peer p) =>
        p.Timers.IsIdle(p.Session.InitiationInFlight, p.PersistentKeepaliveSeconds, p.Endpoint is not null);

    /// <summary>
    /// A handshake is complete: the initiator got the response, or the responder got the first packet
    /// under the new keys. Only then is it the latest handshake (as wireguard-go reports it).
    /// </summary>
    private void OnHandshakeComplete(Peer peer)
    {
        peer.Timers.HandshakeComplete(_time.GetUtcNow().ToUnixTimeMilliseconds());
        Interlocked.Increment(ref Counters.HandshakesCompleted);
    }
}
