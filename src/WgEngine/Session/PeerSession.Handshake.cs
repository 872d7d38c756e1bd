using System.Buffers.Binary;
using WgEngine.Crypto;
using WgEngine.Noise;

namespace WgEngine.Session;

/// <summary>Our own static key pair, as the handshake operations read it.</summary>
internal readonly ref struct LocalStatic(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey)
{
    public ReadOnlySpan<byte> PrivateKey { get; } = privateKey;
    public ReadOnlySpan<byte> PublicKey { get; } = publicKey;
}

/// <summary>What became of an initiation the peer sent us.</summary>
internal enum InitiationOutcome
{
    /// <summary>Answered: the response is written and the new session waits as "next".</summary>
    Responded,
    /// <summary>Its TAI64N is not newer than the last accepted one, or it came within 20 ms of it.</summary>
    Replayed,
    /// <summary>The response could not be made (a degenerate key): nothing changed but the index given back.</summary>
    Failed,
}

/// <summary>What became of a response the peer sent us.</summary>
internal enum ResponseOutcome
{
    /// <summary>The handshake is complete: the new session is current and sends at once.</summary>
    Accepted,
    /// <summary>No initiation of ours waits under that index.</summary>
    Unexpected,
    /// <summary>It did not decrypt or authenticate.</summary>
    Invalid,
}

internal sealed partial class PeerSession
{
    /// <summary>
    /// Initiator, step 1 (whitepaper §5.4.2): writes an initiation into <paramref name="message"/> (148 bytes; the
    /// MACs are the caller's) unless one is not allowed now: a retry (<paramref name="retry"/>, the timers') always
    /// is, a new attempt at most once per Rekey-Timeout. Any initiation in flight is superseded. Caller holds
    /// <see cref="Lock"/>. True when the message is ready to send.
    /// </summary>
    public bool TryCreateInitiation(long now, bool retry, long jitterTicks, in ProtocolTimes times, LocalStatic local,
        ReadOnlySpan<byte> peerPublic, ReadOnlySpan<byte> tai64n, Span<byte> message)
    {
        if (!Timers.MayInitiate(now, retry, times)) return false;
        AbandonHandshake();
        var noise = Noise;
        noise.InitializeWireGuard(peerPublic);
        X25519.GeneratePrivateKey(LocalEphemeral);
        message[..MessageLayout.InitiationSize].Clear();
        message[0] = MessageLayout.TypeInitiation;
        uint index = _indices.Reserve();
        BinaryPrimitives.WriteUInt32LittleEndian(message[MessageLayout.InitiationSenderOffset..], index);
        if (!noise.WriteInitiation(LocalEphemeral, local.PrivateKey, local.PublicKey, peerPublic, tai64n,
                message.Slice(MessageLayout.InitiationBodyOffset, MessageLayout.InitiationBodySize)))
        {
            _indices.Release(index);
            ClearHandshakeSecrets();
            return false;
        }
        _handshakeIndex = index;
        _state = HandshakeState.InitiationCreated;
        // Retransmission and giving up are the timers' (Tick).
        Timers.InitiationSent(now, jitterTicks, times);
        return true;
    }

    /// <summary>
    /// Responder (whitepaper §5.4.3): the device decrypted an initiation into <paramref name="consumed"/> and
    /// found it is from this peer. Checks replay and flood, then writes the response into
    /// <paramref name="response"/> (92 bytes; the MACs are the caller's) and stages the derived session as
    /// "next" until the initiator uses it. Any initiation of ours in flight is superseded by theirs. Caller
    /// holds <see cref="Lock"/>.
    /// </summary>
    public InitiationOutcome ConsumeInitiation(NoiseHandshake consumed, ReadOnlySpan<byte> tai64n,
        ReadOnlySpan<byte> remoteEphemeral, ReadOnlySpan<byte> remoteStatic, ReadOnlySpan<byte> presharedKey,
        uint senderIndex, long now, in ProtocolTimes times, Span<byte> response)
    {
        // Replay protection: the TAI64N must grow; flood protection: at most one every 20 ms.
        if (Tai64N.Compare(tai64n, _lastTimestamp) <= 0 || !Timers.TryConsumeInitiation(now, times))
            return InitiationOutcome.Replayed;
        tai64n.CopyTo(_lastTimestamp);

        AbandonHandshake();
        var noise = Noise;
        noise.CopyFrom(consumed);
        X25519.GeneratePrivateKey(LocalEphemeral);
        response[..MessageLayout.ResponseSize].Clear();
        response[0] = MessageLayout.TypeResponse;
        uint index = _indices.Reserve();
        BinaryPrimitives.WriteUInt32LittleEndian(response[MessageLayout.ResponseSenderOffset..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(response[MessageLayout.ResponseReceiverOffset..], senderIndex);
        bool written = noise.WriteResponse(LocalEphemeral, remoteEphemeral, remoteStatic, presharedKey,
            ReadOnlySpan<byte>.Empty, response.Slice(MessageLayout.ResponseBodyOffset, MessageLayout.ResponseBodySize));
        if (!written)
        {
            _indices.Release(index);
            ClearHandshakeSecrets();
            return InitiationOutcome.Failed;
        }
        var session = DeriveSession(isInitiator: false, index, senderIndex, now);
        // The responder keeps the new session as "next" until the initiator uses it (TryConfirm on receive).
        Erase(Keypairs.StageAsResponder(session));
        return InitiationOutcome.Responded;
    }

    /// <summary>
    /// Initiator, step 2 (whitepaper §5.4.3): the response to our initiation under <paramref name="receiverIndex"/>.
    /// On <see cref="ResponseOutcome.Accepted"/> the new session is current: the device sends what waited for it,
    /// or a keepalive, to confirm it to the responder. Caller holds <see cref="Lock"/>.
    /// </summary>
    public ResponseOutcome ConsumeResponse(uint receiverIndex, uint senderIndex, ReadOnlySpan<byte> body,
        ReadOnlySpan<byte> localPrivate, ReadOnlySpan<byte> presharedKey, long now)
    {
        if (_state != HandshakeState.InitiationCreated || _handshakeIndex != receiverIndex) return ResponseOutcome.Unexpected;
        if (!Noise.ReadResponse(body, LocalEphemeral, localPrivate, presharedKey, Span<byte>.Empty)) return ResponseOutcome.Invalid;
        var session = DeriveSession(isInitiator: true, receiverIndex, senderIndex, now);
        // The initiator may use the new session at once (whitepaper §5.4.6).
        Erase(Keypairs.UseAsInitiator(session));
        return ResponseOutcome.Accepted;
    }

    /// <summary>Split() into the new session, registered under the handshake's index; the handshake state is
    /// spent and erased.</summary>
    private Keypair DeriveSession(bool isInitiator, uint localIndex, uint remoteIndex, long now)
    {
        var session = new Keypair(isInitiator, localIndex, remoteIndex, now);
        Noise.Split(isInitiator, session.SendKeySpan, session.ReceiveKeySpan);
        _indices.Bind(localIndex, session);
        _state = HandshakeState.Zeroed;
        ClearHandshakeSecrets();
        Timers.SessionDerived(now);
        Timers.AuthenticatedPacketReceived(now);
        return session;
    }
}
