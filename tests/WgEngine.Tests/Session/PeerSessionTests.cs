using System.Buffers.Binary;
using WgEngine.Crypto;
using WgEngine.Noise;
using WgEngine.Session;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Session;

/// <summary>
/// One peer's life driven through two session cores with plain numbers for the time: no device, no socket,
/// no thread. Each side is what a device keeps for its one peer; the test carries the bytes between them.
/// </summary>
public sealed class PeerSessionTests
{
    private const long Hz = 1_000_000;                       // one tick = 1 us
    private static readonly ProtocolTimes Times = new(Hz);
    private static readonly DateTimeOffset Wall = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    /// <summary>The receiver-index table as a dictionary: what is registered can be checked.</summary>
    private sealed class Indices : ISessionIndices
    {
        private uint _next = 100;
        public readonly Dictionary<uint, Keypair?> Entries = new();
        public uint Reserve() { uint i = _next++; Entries.Add(i, null); return i; }
        public void Bind(uint index, Keypair session) { Assert.True(Entries.ContainsKey(index)); Entries[index] = session; }
        public void Release(uint index) => Assert.True(Entries.Remove(index), $"index {index} released twice or never reserved");
    }

    private sealed class Side
    {
        public readonly byte[] Private = new byte[32];
        public readonly byte[] Public = new byte[32];
        public readonly Indices Indices = new();
        public readonly PeerSession Session;
        public readonly byte[] Psk = new byte[32];
        public Side()
        {
            X25519.GeneratePrivateKey(Private);
            X25519.PublicKey(Private, Public);
            Session = new PeerSession(Indices);
        }
        public LocalStatic Local => new(Private, Public);
    }

    private static byte[] Initiation(Side from, Side to, long now, DateTimeOffset wall, bool retry = false)
    {
        var msg = new byte[MessageLayout.InitiationSize];
        var ts = new byte[12];
        Tai64N.Write(wall, ts);
        lock (from.Session.Lock)
            Assert.True(from.Session.TryCreateInitiation(now, retry, 0, Times, from.Local, to.Public, ts, msg));
        return msg;
    }

    /// <summary>What the device does before the peer is known: decrypt the initiation with our static key.</summary>
    private static InitiationOutcome Respond(Side responder, byte[] initiation, long now, out byte[] response)
    {
        var scratch = new NoiseHandshake();
        scratch.InitializeWireGuard(responder.Public);
        Span<byte> eph = stackalloc byte[32], stat = stackalloc byte[32], ts = stackalloc byte[12];
        Assert.True(scratch.ReadInitiation(initiation.AsSpan(MessageLayout.InitiationBodyOffset, MessageLayout.InitiationBodySize),
            responder.Private, eph, stat, ts));
        uint sender = BinaryPrimitives.ReadUInt32LittleEndian(initiation.AsSpan(MessageLayout.InitiationSenderOffset));
        response = new byte[MessageLayout.ResponseSize];
        lock (responder.Session.Lock)
            return responder.Session.ConsumeInitiation(scratch, ts, eph, stat, responder.Psk, sender, now, Times, response);
    }

    private static ResponseOutcome Accept(Side initiator, byte[] response, long now)
    {
        uint sender = BinaryPrimitives.ReadUInt32LittleEndian(response.AsSpan(MessageLayout.ResponseSenderOffset));
        uint receiver = BinaryPrimitives.ReadUInt32LittleEndian(response.AsSpan(MessageLayout.ResponseReceiverOffset));
        lock (initiator.Session.Lock)
            return initiator.Session.ConsumeResponse(receiver, sender,
                response.AsSpan(MessageLayout.ResponseBodyOffset, MessageLayout.ResponseBodySize), initiator.Private, initiator.Psk, now);
    }

    private static byte[] Seal(Side from, byte[] payload, long now)
    {
        Assert.True(from.Session.TryTakeSendCounter(now, Times, out var session, out ulong counter));
        var buf = new byte[2048];
        payload.CopyTo(buf, MessageLayout.TransportHeaderSize);
        int total = session.SealTransport(counter, buf, payload.Length, PeerSession.PaddedLength(payload.Length, 1420, buf.Length));
        return buf[..total];
    }

    private static (Side a, Side b) Shaken(long now)
    {
        Side a = new(), b = new();
        Assert.Equal(InitiationOutcome.Responded, Respond(b, Initiation(a, b, now, Wall), now, out var response));
        Assert.Equal(ResponseOutcome.Accepted, Accept(a, response, now));
        return (a, b);
    }

    [Fact]
    public void A_handshake_then_data_both_ways_confirms_the_responders_session()
    {
        long t = 10 * Hz;
        Side a = new(), b = new();
        var init = Initiation(a, b, t, Wall);
        Assert.True(a.Session.InitiationInFlight);
        Assert.Single(a.Indices.Entries);                      // the handshake's index, no session yet

        Assert.Equal(InitiationOutcome.Responded, Respond(b, init, t, out var response));
        Assert.Null(b.Session.Keypairs.Current);               // the responder waits for the initiator's first packet
        Assert.NotNull(b.Session.Keypairs.Next);
        Assert.Equal(ResponseOutcome.Accepted, Accept(a, response, t));
        Assert.False(a.Session.InitiationInFlight);
        var aSession = a.Session.Keypairs.Current!;
        Assert.Same(aSession, a.Indices.Entries[aSession.LocalIndex]);

        var ping = Packets.EchoRequestV4("10.0.0.1", "10.0.0.2", 1, 1);
        var msg = Seal(a, ping, t + 1);
        var got = b.Session.ReceiveTransport(b.Session.Keypairs.Next!, msg, t + 2, Times);
        Assert.Equal(TransportVerdict.Deliver, got.Verdict);
        Assert.True(got.ConfirmedSession);
        Assert.Equal(ping, msg.AsSpan(MessageLayout.TransportHeaderSize, ping.Length).ToArray());
        Assert.NotNull(b.Session.Keypairs.Current);
        Assert.Null(b.Session.Keypairs.Next);

        var back = Seal(b, [], t + 3);                          // a keepalive the other way
        var gotBack = a.Session.ReceiveTransport(aSession, back, t + 4, Times);
        Assert.Equal(TransportVerdict.Keepalive, gotBack.Verdict);
        Assert.False(gotBack.ConfirmedSession);
    }

    [Fact]
    public void A_replayed_forged_or_expired_transport_message_is_refused_with_its_reason()
    {
        long t = 10 * Hz;
        var (a, b) = Shaken(t);
        var msg = Seal(a, Packets.EchoRequestV4("10.0.0.1", "10.0.0.2", 1, 1), t);
        var next = b.Session.Keypairs.Next!;

        var forged = (byte[])msg.Clone();
        forged[^1] ^= 1;
        Assert.Equal(TransportVerdict.AuthFailed, b.Session.ReceiveTransport(next, forged, t, Times).Verdict);
        Assert.NotNull(b.Session.Keypairs.Next);                // a forgery confirms nothing

        Assert.Equal(TransportVerdict.Deliver, b.Session.ReceiveTransport(next, (byte[])msg.Clone(), t, Times).Verdict);
        Assert.Equal(TransportVerdict.Replayed, b.Session.ReceiveTransport(next, (byte[])msg.Clone(), t, Times).Verdict);

        var late = Seal(a, [], t);
        Assert.Equal(TransportVerdict.Expired, b.Session.ReceiveTransport(next, late, t + Times.RejectAfterTime, Times).Verdict);
        Assert.False(a.Session.TryTakeSendCounter(t + Times.RejectAfterTime, Times, out _, out _));   // nor does it send
    }

    [Fact]
    public void An_initiation_replayed_or_within_20_ms_is_refused()
    {
        long t = 10 * Hz;
        Side a = new(), b = new();
        var first = Initiation(a, b, t, Wall);
        Assert.Equal(InitiationOutcome.Responded, Respond(b, first, t, out _));
        Assert.Equal(InitiationOutcome.Replayed, Respond(b, first, t + Hz, out _));         // same TAI64N

        var soon = Initiation(a, b, t, Wall.AddSeconds(1), retry: true);
        Assert.Equal(InitiationOutcome.Replayed, Respond(b, soon, t + Times.InitiationRate - 1, out _));
        var later = Initiation(a, b, t, Wall.AddSeconds(2), retry: true);
        Assert.Equal(InitiationOutcome.Responded, Respond(b, later, t + Hz + Times.InitiationRate, out _));
        // Each answered initiation replaced the staged "next": one session index, no leak.
        Assert.Single(b.Indices.Entries);
    }

    [Fact]
    public void A_response_to_no_initiation_or_a_corrupted_one_changes_nothing()
    {
        long t = 10 * Hz;
        Side a = new(), b = new();
        Assert.Equal(InitiationOutcome.Responded, Respond(b, Initiation(a, b, t, Wall), t, out var response));

        var corrupted = (byte[])response.Clone();
        corrupted[MessageLayout.ResponseBodyOffset + 40] ^= 1;
        Assert.Equal(ResponseOutcome.Invalid, Accept(a, corrupted, t));
        Assert.True(a.Session.InitiationInFlight);
        Assert.Null(a.Session.Keypairs.Current);

        var wrongIndex = (byte[])response.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(wrongIndex.AsSpan(MessageLayout.ResponseReceiverOffset), 9999);
        Assert.Equal(ResponseOutcome.Unexpected, Accept(a, wrongIndex, t));

        Assert.Equal(ResponseOutcome.Accepted, Accept(a, response, t));
        Assert.Equal(ResponseOutcome.Unexpected, Accept(a, response, t));                   // only once
    }

    [Fact]
    public void Rekey_is_due_after_Rekey_After_Time_for_the_initiator_only_and_last_minute_once()
    {
        long t = 10 * Hz;
        var (a, b) = Shaken(t);
        b.Session.ReceiveTransport(b.Session.Keypairs.Next!, Seal(a, [], t), t, Times);      // confirm b's session
        var aSession = a.Session.Keypairs.Current!;
        var bSession = b.Session.Keypairs.Current!;
        Assert.False(PeerSession.RekeyDue(aSession, 1, t + Times.RekeyAfterTime - 1, Times));
        Assert.True(PeerSession.RekeyDue(aSession, 1, t + Times.RekeyAfterTime, Times));
        Assert.False(PeerSession.RekeyDue(bSession, 1, t + Times.RekeyAfterTime, Times));   // the responder waits
        Assert.True(PeerSession.RekeyDue(bSession, ProtocolConstants.RekeyAfterMessages, t, Times));

        long old = t + Times.RekeyOnReceiveAge;
        Assert.True(a.Session.ReceiveTransport(aSession, Seal(b, [], old), old, Times).WantsHandshake);
        Assert.False(a.Session.ReceiveTransport(aSession, Seal(b, [], old), old, Times).WantsHandshake);
        Assert.False(b.Session.ReceiveTransport(bSession, Seal(a, [], old), old, Times).WantsHandshake);
    }

    [Fact]
    public void A_new_attempt_waits_Rekey_Timeout_and_twenty_retries_give_up_and_free_the_index()
    {
        long t = 10 * Hz;
        Side a = new(), b = new();
        Initiation(a, b, t, Wall);
        var msg = new byte[MessageLayout.InitiationSize];
        var ts = new byte[12];
        lock (a.Session.Lock)
            Assert.False(a.Session.TryCreateInitiation(t + Times.RekeyTimeout - 1, retry: false, 0, Times, a.Local, b.Public, ts, msg));

        long now = t;
        int retransmits = 0;
        TimerAction action;
        do
        {
            now += Times.RekeyTimeout;
            lock (a.Session.Lock) action = a.Session.Tick(now, 0, hasEndpoint: true, Times);
            if (action == TimerAction.RetransmitInitiation)
            {
                retransmits++;
                Tai64N.Write(Wall.AddSeconds(retransmits), ts);
                lock (a.Session.Lock) Assert.True(a.Session.TryCreateInitiation(now, retry: true, 0, Times, a.Local, b.Public, ts, msg));
                Assert.Single(a.Indices.Entries);             // each retry supersedes the last one's index
            }
        } while (action == TimerAction.RetransmitInitiation && retransmits < 100);

        Assert.Equal(TimerAction.GiveUpHandshake, action);
        Assert.Equal(ProtocolConstants.MaxTimerHandshakes + 1, retransmits);
        Assert.False(a.Session.InitiationInFlight);
        Assert.Empty(a.Indices.Entries);
    }

    [Fact]
    public void Erasing_keys_releases_every_index_and_zeroes_the_sessions()
    {
        long t = 10 * Hz;
        var (a, b) = Shaken(t);
        var rekey = Initiation(a, b, t + Times.RekeyTimeout, Wall.AddSeconds(10));   // a second handshake in flight
        Assert.Equal(2, a.Indices.Entries.Count);
        var session = a.Session.Keypairs.Current!;

        a.Session.EraseKeys();
        Assert.Empty(a.Indices.Entries);
        Assert.False(a.Session.HasKeys);
        Assert.All(session.SendKey.ToArray(), x => Assert.Equal(0, x));
        Assert.All(a.Session.EphemeralKeyForTests.ToArray(), x => Assert.Equal(0, x));

        // b answers the stale initiation; a, having forgotten it, refuses the response.
        Assert.Equal(InitiationOutcome.Responded, Respond(b, rekey, t + Times.RekeyTimeout, out var response));
        Assert.Equal(ResponseOutcome.Unexpected, Accept(a, response, t + Times.RekeyTimeout));
    }

    [Fact]
    public void A_changed_local_key_forgets_the_peers_last_timestamp()
    {
        long t = 10 * Hz;
        Side a = new(), b = new();
        var first = Initiation(a, b, t, Wall);
        Assert.Equal(InitiationOutcome.Responded, Respond(b, first, t, out _));
        Assert.Equal(InitiationOutcome.Replayed, Respond(b, first, t + Hz, out _));
        b.Session.ForgetRemoteHistory();
        Assert.Equal(InitiationOutcome.Responded, Respond(b, first, t + Hz, out _));
    }
}
