namespace WgEngine.Device;

public sealed partial class WgDevice
{
    private int _sweeping;

    /// <summary>
    /// One sweep over all peers per tick instead of timer objects per peer. Implements the whitepaper's
    /// §6 timers: handshake retransmission and give-up, passive and persistent keepalives, a new
    /// handshake when data went unanswered, and erasing keys of a silent peer.
    /// </summary>
    internal void SweepTimers()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 1) return;
        try
        {
            long now = Now;
            foreach (var peer in _peers.Values) SweepPeer(peer, now);
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private void SweepPeer(Peer peer, long now)
    {
        // Retransmit an unanswered initiation every Rekey-Timeout; give up after Rekey-Attempt-Time.
        bool retransmit = false, giveUp = false;
        lock (peer.HandshakeLock)
        {
            if (peer.State == HandshakeState.InitiationCreated && now >= peer.RetransmitAt)
            {
                if (peer.HandshakeAttempts + 1 >= ProtocolConstants.MaxRetransmissions + 1 ||
                    Older(peer.HandshakeAttemptStartedAt, now, ProtocolConstants.RekeyAttemptTime))
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
            while (peer.Staged.TryDequeue(out var b)) { Interlocked.Decrement(ref peer.StagedCount); _pool.Return(b); }
            return;
        }
        if (retransmit)
        {
            InitiateHandshake(peer, retry: true);
            return;
        }

        long lastSent = Volatile.Read(ref peer.LastSentAt);
        long lastReceived = Volatile.Read(ref peer.LastReceivedAt);
        long lastDataSent = Volatile.Read(ref peer.LastDataSentAt);
        long lastDataReceived = Volatile.Read(ref peer.LastDataReceivedAt);
        bool hasSession = peer.Current is not null;

        // Passive keepalive: we received data but have sent nothing for Keepalive-Timeout.
        if (hasSession && peer.KeepaliveOwed && Older(lastDataReceived, now, ProtocolConstants.KeepaliveTimeout))
        {
            SendKeepalive(peer);
            return;
        }
        // Persistent keepalive: keep NAT mappings open.
        if (peer.PersistentKeepaliveSeconds > 0 && peer.Endpoint is not null &&
            (lastSent == 0 || Older(lastSent, now, TimeSpan.FromSeconds(peer.PersistentKeepaliveSeconds))))
        {
            SendKeepalive(peer);
            return;
        }
        // Data sent but nothing heard for Keepalive-Timeout + Rekey-Timeout: the session may be dead.
        if (lastDataSent != 0 && lastDataSent > lastReceived &&
            Older(lastDataSent, now, ProtocolConstants.KeepaliveTimeout + ProtocolConstants.RekeyTimeout))
        {
            Volatile.Write(ref peer.LastDataSentAt, 0);
            InitiateHandshake(peer, retry: false);
            return;
        }
        // Erase all key material after 3 x Reject-After-Time without a new handshake.
        long lastHandshake = Volatile.Read(ref peer.LastHandshakeAt);
        if (lastHandshake != 0 && Older(lastHandshake, now, ProtocolConstants.ZeroKeysAfter) &&
            (peer.Current is not null || peer.Previous is not null || peer.Next is not null))
        {
            ZeroPeer(peer);
        }
    }
}
