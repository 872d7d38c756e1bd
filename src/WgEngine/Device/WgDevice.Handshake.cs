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
        lock (peer.HandshakeLock)
        {
            // Replay protection: the TAI64N must grow; flood protection: at most one every 20 ms.
            if (Tai64N.Compare(timestamp, peer.LastTimestamp) <= 0 || !peer.Timers.TryConsumeInitiation(now, _times))
            {
                Interlocked.Increment(ref Counters.DroppedHandshakeReplay);
                return;
            }
            timestamp.CopyTo(peer.LastTimestamp);

            // Any initiation of ours in flight is superseded by theirs.
            if (peer.State != HandshakeState.Zeroed) _indices.Remove(peer.HandshakeLocalIndex);
            peer.Noise.CopyFrom(_scratch);
            X25519.GeneratePrivateKey(peer.LocalEphemeral);
            response.Clear();
            response[0] = MessageLayout.TypeResponse;
            uint localIndex = _indices.Add(new IndexEntry(peer, null));
            BinaryPrimitives.WriteUInt32LittleEndian(response[MessageLayout.ResponseSenderOffset..], localIndex);
            BinaryPrimitives.WriteUInt32LittleEndian(response[MessageLayout.ResponseReceiverOffset..], sender);
            if (!peer.Noise.WriteResponse(peer.LocalEphemeral, remoteEphemeral, remoteStatic, peer.PresharedKey,
                    ReadOnlySpan<byte>.Empty, response.Slice(MessageLayout.ResponseBodyOffset, MessageLayout.ResponseBodySize)))
            {
                _indices.Remove(localIndex);
                peer.State = HandshakeState.Zeroed;
                Interlocked.Increment(ref Counters.DroppedHandshakeInvalid);
                return;
            }
            var kp = DeriveKeypair(peer, isInitiator: false, localIndex, sender, now);
            peer.State = HandshakeState.Zeroed;
            peer.Noise.Clear();
            Array.Clear(peer.LocalEphemeral);
            // The responder keeps the new session as "next" until the initiator uses it.
            Erase(peer.Keypairs.StageAsResponder(kp));
            peer.Cookies.AddMacs(response);
        }
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
        long now = Now;
        lock (peer.HandshakeLock)
        {
            if (peer.State != HandshakeState.InitiationCreated || peer.HandshakeLocalIndex != receiver)
            {
                Interlocked.Increment(ref Counters.DroppedHandshakeInvalid);
                return;
            }
            if (!peer.Noise.ReadResponse(msg.Slice(MessageLayout.ResponseBodyOffset, MessageLayout.ResponseBodySize),
                    peer.LocalEphemeral, _privateKey.Span, peer.PresharedKey, Span<byte>.Empty))
            {
                Interlocked.Increment(ref Counters.DroppedHandshakeInvalid);
                return;
            }
            var kp = DeriveKeypair(peer, isInitiator: true, receiver, sender, now);
            peer.State = HandshakeState.Zeroed;
            peer.Noise.Clear();
            Array.Clear(peer.LocalEphemeral);
            OnHandshakeComplete(peer);
            // The initiator may use the new session at once (whitepaper §5.4.6).
            Erase(peer.Keypairs.UseAsInitiator(kp));
        }
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

    /// <summary>Split() into a new keypair registered under the handshake's local index.</summary>
    private Keypair DeriveKeypair(Peer peer, bool isInitiator, uint localIndex, uint remoteIndex, long now)
    {
        var kp = new Keypair(peer, isInitiator, localIndex, remoteIndex, now);
        peer.Noise.Split(isInitiator, kp.SendKeySpan, kp.ReceiveKeySpan);
        kp.KeysDerived();
        _indices.Replace(localIndex, new IndexEntry(peer, kp));
        if (peer.Timers.SessionDerived(now)) MarkTimersDue(peer);
        peer.Timers.AuthenticatedPacketReceived(now);
        return kp;
    }

    /// <summary>
    /// Sends a handshake initiation to the peer's endpoint. Without <paramref name="retry"/> it is rate
    /// limited to one per Rekey-Timeout and does nothing while one is in flight (the timers retry).
    /// </summary>
    internal void InitiateHandshake(Peer peer, bool retry)
    {
        Span<byte> msg = stackalloc byte[MessageLayout.InitiationSize];
        long now = Now;
        lock (peer.HandshakeLock)
        {
            if (peer.Removed || peer.Endpoint is null) return;
            // New outgoing data restarts the attempt count; at most one initiation per Rekey-Timeout.
            if (!peer.Timers.MayInitiate(now, retry, _times)) return;
            if (peer.State != HandshakeState.Zeroed) _indices.Remove(peer.HandshakeLocalIndex);
            Span<byte> peerPublic = stackalloc byte[32];
            peer.PublicKey.CopyTo(peerPublic);
            peer.Noise.InitializeWireGuard(peerPublic);
            X25519.GeneratePrivateKey(peer.LocalEphemeral);
            msg.Clear();
            msg[0] = MessageLayout.TypeInitiation;
            uint localIndex = _indices.Add(new IndexEntry(peer, null));
            BinaryPrimitives.WriteUInt32LittleEndian(msg[MessageLayout.InitiationSenderOffset..], localIndex);
            Span<byte> timestamp = stackalloc byte[12];
            Tai64N.Write(_time.GetUtcNow(), timestamp);
            Span<byte> ourPublic = stackalloc byte[32];
            PublicKey.CopyTo(ourPublic);
            if (!peer.Noise.WriteInitiation(peer.LocalEphemeral, _privateKey.Span, ourPublic, peerPublic, timestamp,
                    msg.Slice(MessageLayout.InitiationBodyOffset, MessageLayout.InitiationBodySize)))
            {
                _indices.Remove(localIndex);
                peer.State = HandshakeState.Zeroed;
                return;
            }
            peer.HandshakeLocalIndex = localIndex;
            peer.State = HandshakeState.InitiationCreated;
            // Retransmission and give-up are the sweep's.
            long jitter = _times.Ticks(TimeSpan.FromMilliseconds(Random.Shared.Next(ProtocolConstants.RekeyTimeoutJitterMaxMs)));
            if (peer.Timers.InitiationSent(now, jitter, _times)) MarkTimersDue(peer);
            peer.Cookies.AddMacs(msg);
        }
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
