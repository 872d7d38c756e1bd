using System.Buffers.Binary;
using WgEngine.Crypto;
using WgEngine.Noise;
using WgEngine.Session;

namespace WgEngine.Device;

internal sealed partial class WgDevice
{
    // Scratch state of the handshake thread (it is the only thread that consumes initiations).
    private readonly NoiseHandshake _scratch = new();
    private readonly StaticStaticCache _staticStatic;

    /// <summary>
    /// Most handshake-thread sends held back for one sendmmsg: few enough that a response waits at most
    /// a millisecond or so behind the messages queued after its initiation.
    /// </summary>
    private const int HandshakeSendBatch = 8;

    /// <summary>Handshake thread: initiations, responses and cookie replies (mac1 already checked).</summary>
    internal void ProcessHandshakeMessage(PacketBuffer buf)
    {
        switch (buf.Data[0])
        {
            case MessageLayout.TypeInitiation: ConsumeInitiation(buf); break;
            case MessageLayout.TypeResponse: ConsumeResponse(buf); break;
            case MessageLayout.TypeCookieReply: ConsumeCookieReply(buf); break;
        }
        _pool.Return(buf);
        // Like a crypto worker, the handshake thread (HandshakeQueue) collects what it sends and sends it
        // in one call when its queue is empty (OnIdle) or the batch is due: on loopback each send otherwise
        // costs a system call and a wake-up of the receiver, ~9% of a handshake's CPU (docs/performance.md).
        // Other callers (tests, the fuzzing driver) have no batch and send at once.
        if (t_outgoing is { Count: >= HandshakeSendBatch } batch && ReferenceEquals(batch.Owner, this)) FlushOutgoing(batch);
    }

    // Monotonic timestamp until which the device still counts as under load (wireguard-go: UnderLoadAfterTime).
    private long _underLoadUntil;

    /// <summary>
    /// wireguard-go's IsUnderLoad: the handshake queue holds at least the threshold (HandshakeQueueSize/8
    /// by default), or did within the last second (so the state does not flap as the queue drains).
    /// </summary>
    private bool IsUnderLoad()
    {
        long now = _time.GetTimestamp();
        if (_handshakes.Count >= _loadThreshold)
        {
            _underLoadUntil = now + _time.TimestampFrequency; // one second
            return true;
        }
        return now < _underLoadUntil;
    }

    /// <summary>
    /// The DoS gate for initiations and responses, in wireguard-go's order (device/receive.go,
    /// RoutineHandshake): mac1 was checked on the receive thread; here, only when under load,
    /// (1) a message without a valid mac2 is answered with a cookie reply and dropped, then
    /// (2) one with a valid mac2 must pass the per-source rate limiter. Only then is it consumed.
    /// </summary>
    private bool PassesLoadCheck(PacketBuffer buf, uint senderIndex)
    {
        if (!IsUnderLoad()) return true;
        if (!_cookieChecker.CheckMac2(buf.Span, buf.Address))
        {
            Span<byte> reply = stackalloc byte[MessageLayout.CookieReplySize];
            _cookieChecker.CreateReply(buf.Span, senderIndex, buf.Address, reply);
            if (_bind.Send(reply, buf.Address)) Interlocked.Add(ref Counters.SentBytes, reply.Length);
            Interlocked.Increment(ref Counters.CookieRepliesSent);
            return false;
        }
        if (_rateLimiter.Allow(buf.Address)) return true;
        Interlocked.Increment(ref Counters.DroppedRateLimited);
        return false;
    }

    private void ConsumeInitiation(PacketBuffer buf)
    {
        var msg = buf.Data.AsSpan(0, MessageLayout.InitiationSize);
        uint sender = BinaryPrimitives.ReadUInt32LittleEndian(msg[MessageLayout.InitiationSenderOffset..]);
        if (!PassesLoadCheck(buf, sender)) return;

        Span<byte> remoteEphemeral = stackalloc byte[32];
        Span<byte> remoteStatic = stackalloc byte[32];
        Span<byte> timestamp = stackalloc byte[12];
        _scratch.InitializeWithHash(NoiseConstants.InitialChainKey, _initialHashForUs);
        if (!_scratch.ReadInitiation(msg.Slice(MessageLayout.InitiationBodyOffset, MessageLayout.InitiationBodySize),
                _privateKey.Span, remoteEphemeral, remoteStatic, timestamp, _staticStatic))
        {
            Interlocked.Increment(ref Counters.DroppedHandshakeInvalid);
            return;
        }
        if (!_peers.TryGetValue(new WgKey(remoteStatic), out var peer))
        {
            Interlocked.Increment(ref Counters.DroppedHandshakeInvalid);
            return;
        }

        long now = Now;
        Span<byte> response = stackalloc byte[MessageLayout.ResponseSize];
        var session = peer.Session;
        lock (session.Lock)
        {
            var outcome = session.ConsumeInitiation(_scratch, timestamp, remoteEphemeral, remoteStatic, peer.PresharedKey,
                sender, now, _times, response);
            if (outcome != InitiationOutcome.Responded)
            {
                if (outcome == InitiationOutcome.Replayed) Interlocked.Increment(ref Counters.DroppedHandshakeReplay);
                else Interlocked.Increment(ref Counters.DroppedHandshakeInvalid);
                return;
            }
            peer.Cookies.AddMacs(response);
        }
        MarkTimersDue(peer);   // a session was derived: the key-erasure clock runs
        Interlocked.Add(ref peer.ReceivedBytes, MessageLayout.InitiationSize);
        UpdateEndpoint(peer, buf);
        SendRaw(peer, response);
    }

    private void ConsumeResponse(PacketBuffer buf)
    {
        var msg = buf.Data.AsSpan(0, MessageLayout.ResponseSize);
        uint sender = BinaryPrimitives.ReadUInt32LittleEndian(msg[MessageLayout.ResponseSenderOffset..]);
        uint receiver = BinaryPrimitives.ReadUInt32LittleEndian(msg[MessageLayout.ResponseReceiverOffset..]);
        // Load gate before the index lookup, as wireguard-go orders it.
        if (!PassesLoadCheck(buf, sender)) return;
        if (!_indices.TryGet(receiver, out var entry) || entry.Keypair is not null)
        {
            Interlocked.Increment(ref Counters.DroppedUnknownIndex);
            return;
        }
        var peer = entry.Peer;
        var session = peer.Session;
        long now = Now;
        lock (session.Lock)
        {
            var outcome = session.ConsumeResponse(receiver, sender,
                msg.Slice(MessageLayout.ResponseBodyOffset, MessageLayout.ResponseBodySize), _privateKey.Span, peer.PresharedKey, now);
            if (outcome != ResponseOutcome.Accepted)
            {
                Interlocked.Increment(ref Counters.DroppedHandshakeInvalid);
                return;
            }
            OnHandshakeComplete(peer);
        }
        MarkTimersDue(peer);
        Interlocked.Add(ref peer.ReceivedBytes, MessageLayout.ResponseSize);
        UpdateEndpoint(peer, buf);
        // Confirm the session to the responder: staged data, or else a keepalive.
        if (!FlushStaged(peer)) SendKeepalive(peer);
    }

    private void ConsumeCookieReply(PacketBuffer buf)
    {
        uint receiver = BinaryPrimitives.ReadUInt32LittleEndian(buf.Data.AsSpan(MessageLayout.CookieReplyReceiverOffset));
        if (!_indices.TryGet(receiver, out var entry))
        {
            Interlocked.Increment(ref Counters.DroppedUnknownIndex);
            return;
        }
        if (!entry.Peer.Cookies.ConsumeReply(buf.Span)) Interlocked.Increment(ref Counters.DroppedHandshakeInvalid);
    }

    /// <summary>
    /// Sends a handshake initiation to the peer's endpoint. Without <paramref name="retry"/> it is rate
    /// limited to one per Rekey-Timeout and does nothing while one is in flight (the timers retry).
    /// </summary>
    internal void InitiateHandshake(Peer peer, bool retry)
    {
        Span<byte> msg = stackalloc byte[MessageLayout.InitiationSize];
        Span<byte> peerPublic = stackalloc byte[32];
        Span<byte> ourPublic = stackalloc byte[32];
        Span<byte> timestamp = stackalloc byte[12];
        long now = Now;
        var session = peer.Session;
        lock (session.Lock)
        {
            if (peer.Removed || peer.Endpoint is null) return;
            peer.PublicKey.CopyTo(peerPublic);
            PublicKey.CopyTo(ourPublic);
            Tai64N.Write(_time.GetUtcNow(), timestamp);
            long jitter = _times.Ticks(TimeSpan.FromMilliseconds(Random.Shared.Next(ProtocolConstants.RekeyTimeoutJitterMaxMs)));
            if (!session.TryCreateInitiation(now, retry, jitter, _times, new LocalStatic(_privateKey.Span, ourPublic),
                    peerPublic, timestamp, msg))
                return;
            peer.Cookies.AddMacs(msg);
        }
        MarkTimersDue(peer);   // the retransmission is due after Rekey-Timeout
        SendRaw(peer, msg);
    }

    private void SendRaw(Peer peer, ReadOnlySpan<byte> datagram)
    {
        var ep = peer.Endpoint;
        if (ep is null) return;
        var batch = t_outgoing;
        if (batch is not null && ReferenceEquals(batch.Owner, this))
        {
            // The handshake thread: goes out with its batch (ProcessHandshakeMessage), accounted there.
            var buf = _pool.Rent();
            datagram.CopyTo(buf.Data);
            batch.Add(buf, datagram.Length, ep, peer, carriesData: false);
            if (batch.IsFull) FlushOutgoing(batch);
            return;
        }
        if (_bind.Send(datagram, ep))
        {
            Interlocked.Add(ref Counters.SentBytes, datagram.Length);
            Interlocked.Add(ref peer.SentBytes, datagram.Length);
            peer.Timers.AuthenticatedPacketSent(Now);
        }
    }
}
