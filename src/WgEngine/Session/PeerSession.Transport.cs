using System.Buffers.Binary;
using WgEngine.Crypto;
using WgEngine.Noise;

namespace WgEngine.Session;

/// <summary>What became of a transport message received on one of the peer's sessions.</summary>
internal enum TransportVerdict
{
    /// <summary>Authentic and new: the plaintext (an IP packet, still to be source-checked) is the device's.</summary>
    Deliver,
    /// <summary>Authentic and new, and empty: a keepalive, nothing to deliver.</summary>
    Keepalive,
    /// <summary>The session is older than Reject-After-Time.</summary>
    Expired,
    /// <summary>The tag did not verify (forged, corrupted, or under another key).</summary>
    AuthFailed,
    /// <summary>A counter already seen or too far behind the window.</summary>
    Replayed,
}

/// <summary>The result of <see cref="PeerSession.ReceiveTransport"/>: the verdict and what else the device must do.</summary>
internal readonly struct TransportReceived(TransportVerdict verdict, int plaintextLength, bool confirmedSession, bool wantsHandshake)
{
    public TransportVerdict Verdict { get; } = verdict;
    /// <summary>Bytes of plaintext after the 16-byte header, where the ciphertext was.</summary>
    public int PlaintextLength { get; } = plaintextLength;
    /// <summary>This packet confirmed the responder's new session: the handshake is complete, and what waited
    /// for a session can go.</summary>
    public bool ConfirmedSession { get; } = confirmedSession;
    /// <summary>The initiator's session nears Reject-After-Time: start the last-minute handshake (§6.2).</summary>
    public bool WantsHandshake { get; } = wantsHandshake;
    public bool Authentic => Verdict is TransportVerdict.Deliver or TransportVerdict.Keepalive;
}

internal sealed partial class PeerSession
{
    /// <summary>
    /// A transport message arrived on <paramref name="session"/> (one of this peer's, found by its receiver
    /// index): rejects an expired session, authenticates and decrypts in place (the plaintext replaces the
    /// ciphertext at offset 16), checks the counter against the replay window, confirms a responder's "next"
    /// session, and records the receipt with the timers. No lock. The same as <see cref="IsExpired"/>, then
    /// <see cref="Open"/>, then <see cref="Accept"/>, which a worker with helpers does for a run of packets at once
    /// (open on several threads, then accept each in order).
    /// </summary>
    public TransportReceived ReceiveTransport(Keypair session, Span<byte> message, long now, in ProtocolTimes times)
    {
        if (IsExpired(session, now, times)) return new(TransportVerdict.Expired, 0, false, false);
        if (!Open(session, message, out int plaintextLength)) return new(TransportVerdict.AuthFailed, 0, false, false);
        return Accept(session, message, plaintextLength, now, times);
    }

    /// <summary>The session is older than Reject-After-Time: nothing more is received on it (whitepaper §6.2).</summary>
    public static bool IsExpired(Keypair session, long now, in ProtocolTimes times) => now - session.CreatedAt >= times.RejectAfterTime;

    /// <summary>
    /// Authenticates and decrypts a transport message in place (the plaintext replaces the ciphertext at offset 16;
    /// <paramref name="plaintextLength"/> bytes of it). Pure: reads only the session's receive key and the message,
    /// changes nothing but the message, so any thread may open any packet at any time; what the packet means to the
    /// session (replay window, confirmation, timers) is <see cref="Accept"/>'s, in order, on the peer's worker.
    /// False when the tag does not verify (the message's content is then undefined).
    /// </summary>
    public static bool Open(Keypair session, Span<byte> message, out int plaintextLength)
    {
        ulong counter = BinaryPrimitives.ReadUInt64LittleEndian(message[MessageLayout.TransportCounterOffset..]);
        var sealedPart = message[MessageLayout.TransportHeaderSize..];
        plaintextLength = sealedPart.Length - ChaChaPoly.TagSize;
        return session.Open(counter, sealedPart, message.Slice(MessageLayout.TransportHeaderSize, plaintextLength));
    }

    /// <summary>
    /// An authentic message (<see cref="Open"/> verified it) is taken into the session: its counter (still in the
    /// header) against the replay window, the confirmation of a responder's "next" session, the timers. Stateful:
    /// only on the peer's worker, in arrival order.
    /// </summary>
    public TransportReceived Accept(Keypair session, ReadOnlySpan<byte> message, int plaintextLength, long now, in ProtocolTimes times)
    {
        ulong counter = BinaryPrimitives.ReadUInt64LittleEndian(message[MessageLayout.TransportCounterOffset..]);
        if (!session.AcceptCounter(counter)) return new(TransportVerdict.Replayed, 0, false, false);

        bool confirmed = Keypairs.TryConfirm(session, out var retired);
        if (confirmed) Erase(retired);
        Timers.AuthenticatedPacketReceived(now);
        // An initiator whose session nears Reject-After-Time makes one last-minute handshake (whitepaper §6.2).
        bool wantsHandshake = session.IsInitiator && ReferenceEquals(session, Keypairs.Current)
            && Timers.WantsLastMinuteHandshake(now, session.CreatedAt, times);
        var verdict = plaintextLength == 0 ? TransportVerdict.Keepalive : TransportVerdict.Deliver;
        return new(verdict, plaintextLength, confirmed, wantsHandshake);
    }

    /// <summary>
    /// A packet is to be sent: the session and counter to seal it with, or false when there is no usable
    /// session (none, older than Reject-After-Time, or out of counters): then the packet waits and a
    /// handshake starts (whitepaper §6.1). No lock.
    /// </summary>
    /// <summary>A current session young enough to send on (the same age test as <see cref="TryTakeSendCounter"/>).</summary>
    public bool HasUsableSession(long now, in ProtocolTimes times) =>
        Keypairs.Current is { } session && now - session.CreatedAt < times.RejectAfterTime;

    public bool TryTakeSendCounter(long now, in ProtocolTimes times, out Keypair session, out ulong counter)
    {
        counter = 0;
        session = Keypairs.Current!;
        return session is not null && now - session.CreatedAt < times.RejectAfterTime && session.TryNextSendCounter(out counter);
    }

    /// <summary>After sending with <paramref name="counter"/> on <paramref name="session"/>: is a new handshake
    /// due? Rekey-After-Time applies to the initiator only (whitepaper §6.2), Rekey-After-Messages to both.</summary>
    public static bool RekeyDue(Keypair session, ulong counter, long now, in ProtocolTimes times) =>
        (session.IsInitiator && now - session.CreatedAt >= times.RekeyAfterTime) || counter >= ProtocolConstants.RekeyAfterMessages;

    /// <summary>Pads a plaintext to a multiple of 16 but never past the MTU (whitepaper §5.4.6), nor past what
    /// a buffer of <paramref name="capacity"/> bytes holds with the header and the tag.</summary>
    public static int PaddedLength(int length, int mtu, int capacity)
    {
        int padded = (length + MessageLayout.PaddingMultiple - 1) & ~(MessageLayout.PaddingMultiple - 1);
        if (padded > mtu) padded = Math.Max(length, mtu);
        return Math.Min(padded, capacity - MessageLayout.TransportHeaderSize - ChaChaPoly.TagSize);
    }
}
