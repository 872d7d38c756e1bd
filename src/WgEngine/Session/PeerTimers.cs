
namespace WgEngine.Session;

/// <summary>What a timer tick asks the device to do for one peer.</summary>
internal enum TimerAction
{
    None,
    /// <summary>Our initiation went unanswered for Rekey-Timeout: send a new one (counted as a retry).</summary>
    RetransmitInitiation,
    /// <summary>More than MaxTimerHandshakes retries went unanswered: drop the handshake and what was staged.</summary>
    GiveUpHandshake,
    /// <summary>Data arrived and we sent nothing for Keepalive-Timeout, or the persistent keepalive is due.</summary>
    SendKeepalive,
    /// <summary>Data went unanswered for Keepalive-Timeout + Rekey-Timeout: the session may be dead.</summary>
    NewHandshake,
    /// <summary>No new session for 3 x Reject-After-Time: erase every key, then call <see cref="PeerTimers.KeysErased"/>.</summary>
    EraseKeys,
}

/// <summary>What the timers need to know of the rest of the peer's state at a tick.</summary>
internal readonly record struct TimerInputs(
    bool InitiationInFlight, bool HasCurrentSession, bool HasKeys, int PersistentKeepaliveSeconds, bool HasEndpoint);

/// <summary>
/// One peer's timer state (whitepaper §6; event names as in wireguard-go's timers.go). The packet paths
/// report events (sent, received, session derived, handshake complete); <see cref="Tick"/> takes the time
/// and returns what is due. No I/O, no threads and no clock of its own: times are TimeProvider ticks, 0 = never.
/// Event methods return true when the peer stops being idle, i.e. must join the device's sweep list.
/// Fields are read and written with Volatile/Interlocked: the packet threads and the sweep share them.
/// </summary>
internal sealed class PeerTimers
{
    private long _lastSentAt;              // any authenticated packet sent
    private long _lastReceivedAt;          // any authenticated packet received
    private long _keepaliveOwedSince;      // first data received since we last sent anything
    private long _unansweredSince;         // first data sent since we last heard anything
    private long _sessionDerivedAt;        // keys derived last (the erasure clock)
    private long _lastInitiationSentAt;
    private long _lastInitiationConsumedAt;
    private long _retransmitAt;
    private long _lastHandshakeUnixMs;     // wall clock of the last confirmed handshake
    private int _handshakeAttempts;
    private volatile bool _sentLastMinuteHandshake;

    /// <summary>Wall-clock milliseconds of the last completed handshake; 0 = never.</summary>
    public long LastHandshakeUnixMs => Volatile.Read(ref _lastHandshakeUnixMs);
    /// <summary>Retries of the initiation in flight.</summary>
    public int HandshakeAttempts => Volatile.Read(ref _handshakeAttempts);

    // ---- events ----

    /// <summary>Any authenticated packet sent (transport, keepalive or handshake message).</summary>
    public void AuthenticatedPacketSent(long now)
    {
        Volatile.Write(ref _lastSentAt, now);
        Volatile.Write(ref _keepaliveOwedSince, 0);
    }

    /// <summary>Any authenticated packet received (transport, keepalive or handshake message).</summary>
    public void AuthenticatedPacketReceived(long now)
    {
        Volatile.Write(ref _lastReceivedAt, now);
        Volatile.Write(ref _unansweredSince, 0);
    }

    /// <summary>Data (not a keepalive) sent: a new handshake is due if nothing is heard back. Only the change
    /// from 0 can make an idle peer due, so only then does it return true.</summary>
    public bool DataSent(long now)
    {
        if (Volatile.Read(ref _unansweredSince) != 0) return false;
        Volatile.Write(ref _unansweredSince, now);
        return true;
    }

    /// <summary>Data received: a keepalive is owed unless we send something first.</summary>
    public bool DataReceived(long now)
    {
        if (Volatile.Read(ref _keepaliveOwedSince) != 0) return false;
        Volatile.Write(ref _keepaliveOwedSince, now);
        return true;
    }

    /// <summary>New keys on either side: the key-erasure clock restarts. Always makes the peer due.</summary>
    public bool SessionDerived(long now)
    {
        Volatile.Write(ref _sessionDerivedAt, now);
        return true;
    }

    /// <summary>The initiator got the response, or the responder the first packet under the new keys.</summary>
    public void HandshakeComplete(long unixMs)
    {
        Volatile.Write(ref _handshakeAttempts, 0);
        _sentLastMinuteHandshake = false;
        Volatile.Write(ref _lastHandshakeUnixMs, unixMs);
    }

    /// <summary>
    /// May we send an initiation now? A retry (the timers') always may. A new attempt (data to send, a dead
    /// session) restarts the retry count and is allowed at most once per Rekey-Timeout.
    /// </summary>
    public bool MayInitiate(long now, bool retry, in ProtocolTimes times)
    {
        if (retry) return true;
        Volatile.Write(ref _handshakeAttempts, 0);
        long last = Volatile.Read(ref _lastInitiationSentAt);
        return last == 0 || now - last >= times.RekeyTimeout;
    }

    /// <summary>An initiation left: its retransmission is due after Rekey-Timeout plus <paramref name="jitterTicks"/>
    /// (the caller draws the jitter: up to 333 ms, as wireguard-go). Makes the peer due.</summary>
    public bool InitiationSent(long now, long jitterTicks, in ProtocolTimes times)
    {
        Volatile.Write(ref _lastInitiationSentAt, now);
        Volatile.Write(ref _retransmitAt, now + times.RekeyTimeout + jitterTicks);
        return true;
    }

    /// <summary>Flood protection: at most one accepted initiation from the peer every 20 ms. True (and
    /// recorded) when this one may be processed.</summary>
    public bool TryConsumeInitiation(long now, in ProtocolTimes times)
    {
        long last = Volatile.Read(ref _lastInitiationConsumedAt);
        if (last != 0 && now - last < times.InitiationRate) return false;
        Volatile.Write(ref _lastInitiationConsumedAt, now);
        return true;
    }

    /// <summary>Forgets the initiation rate limit (the device's key changed: the peer will start over).</summary>
    public void ResetInitiationRate() => Volatile.Write(ref _lastInitiationConsumedAt, 0);

    /// <summary>
    /// The initiator receives on a current session created <paramref name="sessionCreatedAt"/>: once that
    /// session nears Reject-After-Time it makes one last-minute handshake (whitepaper §6.2). True exactly once
    /// per session age crossing.
    /// </summary>
    public bool WantsLastMinuteHandshake(long now, long sessionCreatedAt, in ProtocolTimes times)
    {
        if (_sentLastMinuteHandshake || now - sessionCreatedAt < times.RekeyOnReceiveAge) return false;
        _sentLastMinuteHandshake = true;
        return true;
    }

    /// <summary>Back to a peer that never sent, received or shook hands (a fuzzing world between inputs).</summary>
    public void Reset()
    {
        _lastSentAt = _lastReceivedAt = _keepaliveOwedSince = _unansweredSince = _sessionDerivedAt = 0;
        _lastInitiationSentAt = _lastInitiationConsumedAt = _retransmitAt = _lastHandshakeUnixMs = 0;
        _handshakeAttempts = 0;
        _sentLastMinuteHandshake = false;
    }

    // ---- the tick ----

    /// <summary>
    /// Nothing can be due: no handshake in flight, no keepalive owed, no unanswered data, no persistent
    /// keepalive, no keys to erase. Takes no lock; a change racing with it is seen at the next tick.
    /// </summary>
    public bool IsIdle(bool handshakeInProgress, int persistentKeepaliveSeconds, bool hasEndpoint) =>
        Volatile.Read(ref _sessionDerivedAt) == 0
        && Volatile.Read(ref _keepaliveOwedSince) == 0
        && Volatile.Read(ref _unansweredSince) == 0
        && (persistentKeepaliveSeconds == 0 || !hasEndpoint)
        && !handshakeInProgress;

    /// <summary>
    /// What is due at <paramref name="now"/>, at most one thing, in the whitepaper's order of precedence:
    /// retransmit or give up the initiation in flight, passive keepalive, new handshake for unanswered data,
    /// persistent keepalive, key erasure. Call it with the peer's handshake lock held, so that the
    /// initiation-in-flight input and the retry count agree (a GiveUpHandshake is carried out under it).
    /// </summary>
    public TimerAction Tick(long now, in TimerInputs peer, in ProtocolTimes times)
    {
        if (peer.InitiationInFlight && now >= Volatile.Read(ref _retransmitAt))
        {
            if (_handshakeAttempts > ProtocolConstants.MaxTimerHandshakes)
            {
                Volatile.Write(ref _keepaliveOwedSince, 0);
                return TimerAction.GiveUpHandshake;
            }
            Interlocked.Increment(ref _handshakeAttempts);
            return TimerAction.RetransmitInitiation;
        }
        long owedSince = Volatile.Read(ref _keepaliveOwedSince);
        if (owedSince != 0 && peer.HasCurrentSession && now - owedSince >= times.KeepaliveTimeout)
            return TimerAction.SendKeepalive;
        long unanswered = Volatile.Read(ref _unansweredSince);
        if (unanswered != 0 && now - unanswered >= times.KeepaliveTimeout + times.RekeyTimeout)
        {
            Volatile.Write(ref _unansweredSince, 0);
            return TimerAction.NewHandshake;
        }
        if (peer.PersistentKeepaliveSeconds > 0 && peer.HasEndpoint)
        {
            long last = Math.Max(Volatile.Read(ref _lastSentAt), Volatile.Read(ref _lastReceivedAt));
            if (last == 0 || now - last >= times.Seconds(peer.PersistentKeepaliveSeconds))
                return TimerAction.SendKeepalive;
        }
        long derived = Volatile.Read(ref _sessionDerivedAt);
        if (derived != 0 && now - derived >= times.ZeroKeysAfter)
        {
            if (peer.HasKeys) return TimerAction.EraseKeys;
            // Nothing left to erase: idle again unless a new session was derived meanwhile.
            Interlocked.CompareExchange(ref _sessionDerivedAt, 0, derived);
        }
        return TimerAction.None;
    }

    /// <summary>The keys were erased after an <see cref="TimerAction.EraseKeys"/>: the erasure clock stops,
    /// unless a session was derived after <paramref name="tickedAt"/> (then it restarts from that one).</summary>
    public void KeysErased(long tickedAt, in ProtocolTimes times)
    {
        long derived = Volatile.Read(ref _sessionDerivedAt);
        if (derived != 0 && tickedAt - derived >= times.ZeroKeysAfter) Interlocked.CompareExchange(ref _sessionDerivedAt, 0, derived);
    }
}
