using WgEngine.Session;

namespace WgEngine.Tests.Session;

/// <summary>
/// One peer's timers driven by plain numbers: no device, no threads, no sockets, no sleeping. The clock
/// runs at 1,000 ticks per second, so 5 s is 5,000 (whitepaper §6; values as in wireguard-go).
/// </summary>
public sealed class PeerTimersTests
{
    private static readonly ProtocolTimes Times = new(1000);
    private static TimerInputs Peer(bool inFlight = false, bool current = true, bool keys = true, int keepalive = 0, bool endpoint = true) =>
        new(inFlight, current, keys, keepalive, endpoint);

    [Fact]
    public void A_fresh_peer_is_idle_and_nothing_is_due()
    {
        var t = new PeerTimers();
        Assert.True(t.IsIdle(false, 0, true));
        Assert.Equal(TimerAction.None, t.Tick(1_000_000, Peer(), Times));
    }

    [Fact]
    public void An_unanswered_initiation_is_retransmitted_after_rekey_timeout_plus_jitter_then_given_up()
    {
        var t = new PeerTimers();
        Assert.True(t.MayInitiate(1000, retry: false, Times));
        Assert.True(t.InitiationSent(1000, jitterTicks: 200, Times));
        Assert.False(t.IsIdle(true, 0, true));
        Assert.Equal(TimerAction.None, t.Tick(1000 + 5199, Peer(inFlight: true), Times));
        Assert.Equal(TimerAction.RetransmitInitiation, t.Tick(1000 + 5200, Peer(inFlight: true), Times));
        // A second initiation for new data within Rekey-Timeout is refused; the timers' retry is not.
        Assert.False(t.MayInitiate(1000 + 4999, retry: false, Times));
        Assert.True(t.MayInitiate(1000 + 4999, retry: true, Times));

        long now = 1000;
        int retries = 0;
        for (int i = 0; i < 100; i++)
        {
            t.InitiationSent(now, 0, Times);
            now += 5000;
            var action = t.Tick(now, Peer(inFlight: true), Times);
            if (action == TimerAction.GiveUpHandshake) break;
            Assert.Equal(TimerAction.RetransmitInitiation, action);
            retries++;
        }
        // The refused new attempt above restarted the count: MaxTimerHandshakes + 1 retries, so with the
        // first one 20 initiations in all (~100 s), as wireguard-go gives up.
        Assert.Equal(ProtocolConstants.MaxTimerHandshakes + 1, retries);
    }

    [Fact]
    public void Data_received_owes_a_keepalive_after_keepalive_timeout_unless_something_was_sent()
    {
        var t = new PeerTimers();
        Assert.True(t.DataReceived(1));       // (0 is "never": clocks start above it)
        Assert.False(t.DataReceived(10));     // already owed: the peer is on the sweep list
        Assert.Equal(TimerAction.None, t.Tick(10_000, Peer(), Times));
        Assert.Equal(TimerAction.SendKeepalive, t.Tick(10_001, Peer(), Times));
        Assert.Equal(TimerAction.None, t.Tick(10_001, Peer(current: false), Times));   // no session to send it on
        t.AuthenticatedPacketSent(10_001);
        Assert.Equal(TimerAction.None, t.Tick(20_000, Peer(), Times));
    }

    [Fact]
    public void Data_sent_and_never_answered_starts_a_new_handshake_after_15_seconds()
    {
        var t = new PeerTimers();
        Assert.True(t.DataSent(1));
        Assert.Equal(TimerAction.None, t.Tick(15_000, Peer(), Times));
        Assert.Equal(TimerAction.NewHandshake, t.Tick(15_001, Peer(), Times));
        Assert.Equal(TimerAction.None, t.Tick(15_002, Peer(), Times));          // once
        Assert.True(t.DataSent(20_000));
        t.AuthenticatedPacketReceived(21_000);                                   // answered
        Assert.Equal(TimerAction.None, t.Tick(40_000, Peer(), Times));
    }

    [Fact]
    public void The_persistent_keepalive_follows_the_last_packet_either_way()
    {
        var t = new PeerTimers();
        Assert.False(t.IsIdle(false, 25, hasEndpoint: true));
        Assert.True(t.IsIdle(false, 25, hasEndpoint: false));
        Assert.Equal(TimerAction.SendKeepalive, t.Tick(0, Peer(keepalive: 25), Times));   // never sent anything
        t.AuthenticatedPacketSent(1000);
        Assert.Equal(TimerAction.None, t.Tick(25_999, Peer(keepalive: 25), Times));
        t.AuthenticatedPacketReceived(20_000);
        Assert.Equal(TimerAction.None, t.Tick(44_999, Peer(keepalive: 25), Times));
        Assert.Equal(TimerAction.SendKeepalive, t.Tick(45_000, Peer(keepalive: 25), Times));
    }

    [Fact]
    public void Keys_are_erased_after_three_times_reject_after_time_without_a_new_session()
    {
        var t = new PeerTimers();
        Assert.True(t.SessionDerived(1));
        Assert.Equal(TimerAction.None, t.Tick(540_000, Peer(), Times));
        Assert.Equal(TimerAction.EraseKeys, t.Tick(540_001, Peer(), Times));
        t.KeysErased(540_001, Times);
        Assert.True(t.IsIdle(false, 0, true));
        // A session derived after the tick keeps the clock running.
        t.SessionDerived(600_000);
        t.KeysErased(600_001, Times);
        Assert.False(t.IsIdle(false, 0, true));
        // Nothing to erase: the peer just becomes idle.
        Assert.Equal(TimerAction.None, t.Tick(1_140_000, Peer(keys: false), Times));
        Assert.True(t.IsIdle(false, 0, true));
    }

    [Fact]
    public void The_initiator_rekeys_once_when_receiving_on_an_old_session_and_initiations_are_flood_limited()
    {
        var t = new PeerTimers();
        long age = Times.RekeyOnReceiveAge;
        Assert.False(t.WantsLastMinuteHandshake(age - 1, 0, Times));
        Assert.True(t.WantsLastMinuteHandshake(age, 0, Times));
        Assert.False(t.WantsLastMinuteHandshake(age + 1, 0, Times));
        t.HandshakeComplete(unixMs: 1234);
        Assert.Equal(1234, t.LastHandshakeUnixMs);
        Assert.True(t.WantsLastMinuteHandshake(age + 2, 0, Times));   // a new session may rekey again

        Assert.True(t.TryConsumeInitiation(100, Times));
        Assert.False(t.TryConsumeInitiation(119, Times));             // 20 ms apart at least
        Assert.True(t.TryConsumeInitiation(120, Times));
    }
}
