using Microsoft.Extensions.Time.Testing;
using WgEngine.Device;
using WgEngine.Session;
using WgEngine.Noise;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>The whitepaper's §6 timers, driven by a fake clock; what goes on the wire is asserted.</summary>
public class TimerTests
{
    private static FakeTimeProvider NewClock() => new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>Moves the fake clock in 100 ms steps (the sweep's tick); after each step, waits until the
    /// devices have processed everything the step caused, so a loaded machine cannot let the clock run
    /// ahead of the packets (a late keepalive would look like 15 s of silence and start a handshake).</summary>
    private static void Advance(TestNet net, FakeTimeProvider clock, TimeSpan by)
    {
        net.WaitQuiescent();
        for (var t = TimeSpan.Zero; t < by; t += TimeSpan.FromMilliseconds(100))
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            net.WaitQuiescent();
        }
    }

    [Fact]
    public void UnansweredInitiationIsRetriedEveryRekeyTimeoutThenAbandonedWithItsStagedPackets()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var sink = new CaptureEgress();
        var (client, clientKey, clientBind) = net.Create(egress: sink);
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        net.DropFilter = (_, to, _) => to.Equals(gwBind.LocalEndPoint); // the gateway is unreachable

        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        int Sent() => net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeInitiation);
        TestNet.WaitFor(() => Sent() == 1, "the first initiation");

        Advance(net, clock, TimeSpan.FromMilliseconds(4900));
        Assert.Equal(1, Sent());                       // not before Rekey-Timeout
        Advance(net, clock, TimeSpan.FromMilliseconds(500));
        TestNet.WaitFor(() => Sent() == 2, "the first retry within 5 s + 333 ms jitter");

        // As wireguard-go and the kernel: retries continue while no more than MaxTimerHandshakes (18)
        // went unanswered, so 20 initiations in all, then nothing.
        Advance(net, clock, TimeSpan.FromSeconds(120));
        Assert.Equal(ProtocolConstants.MaxTimerHandshakes + 2, Sent());
        Advance(net, clock, TimeSpan.FromSeconds(30));
        Assert.Equal(ProtocolConstants.MaxTimerHandshakes + 2, Sent());

        // The staged ping was dropped at give-up: once the gateway is reachable only the new one arrives.
        net.DropFilter = null;
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 2)));
        var reply = sink.Next();
        Assert.Equal(2, reply[27]);                    // sequence number 2
        Assert.False(sink.Packets.TryTake(out _, 200));
    }

    [Fact]
    public void InitiatorRekeysWhenSendingOnASessionOlderThanRekeyAfterTimeAndTheResponderDoesNot()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var gwSink = new CaptureEgress();
        var clientSink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(gatewayEgress: gwSink, clientEgress: clientSink);
        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8])));
        gwSink.Next();

        Advance(net, clock, TimeSpan.FromSeconds(119));
        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8])));
        gwSink.Next();
        Assert.Equal(1, net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeInitiation));

        Advance(net, clock, TimeSpan.FromSeconds(2));
        // The responder keeps sending on its 121 s old session without initiating...
        Assert.True(gw.SendPacket(Packets.UdpV4("10.8.0.1", "10.8.0.2", 3, 4, new byte[8])));
        clientSink.Next();
        Assert.Equal(0, net.CountSent(gwBind.LocalEndPoint, MessageLayout.TypeInitiation));
        // ...the initiator sends, then starts a new handshake.
        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8])));
        gwSink.Next();
        TestNet.WaitFor(() => net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeInitiation) == 2, "the rekey initiation");
        TestNet.WaitFor(() => gw.Counters.Handshakes == 2, "the new session");
    }

    [Fact]
    public void InitiatorRekeysAfterRekeyAfterMessagesAndStopsUsingASessionAtRejectAfterMessages()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var gwSink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(gatewayEgress: gwSink);
        var packet = Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8]);
        Assert.True(client.SendPacket(packet));
        gwSink.Next();
        int Initiations() => net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeInitiation);

        // At Rekey-After-Messages: the packet still goes out, and a handshake starts (once Rekey-Timeout
        // has passed since the last initiation: at most one per 5 s).
        Advance(net, clock, TimeSpan.FromSeconds(6));
        net.DropFilter = (from, _, data) => from.Equals(clientBind.LocalEndPoint) && data[0] == MessageLayout.TypeInitiation;
        client.SetNextSendCounter(gwKey.PublicKey, ProtocolConstants.RekeyAfterMessages);
        Assert.True(client.SendPacket(packet));
        Assert.Equal(packet, gwSink.Next());          // still sent (and accepted) on the old session
        TestNet.WaitFor(() => Initiations() == 2, "an initiation at Rekey-After-Messages");

        // At Reject-After-Messages: the session may not be used; the packet waits for a new one.
        Advance(net, clock, TimeSpan.FromSeconds(6));
        client.SetNextSendCounter(gwKey.PublicKey, ProtocolConstants.RejectAfterMessages);
        int transportBefore = net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeTransport);
        Assert.True(client.SendPacket(packet));
        TestNet.WaitFor(() => Initiations() == 3, "an initiation at Reject-After-Messages");
        Assert.Equal(transportBefore, net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeTransport));
        Assert.False(gwSink.Packets.TryTake(out _, 100));

        net.DropFilter = null;
        Advance(net, clock, TimeSpan.FromSeconds(6));       // the retry gets through; the staged packet follows
        Assert.Equal(packet, gwSink.Next());
    }

    [Fact]
    public void NoSessionOlderThanRejectAfterTimeIsUsedEitherWay()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var gwSink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(gatewayEgress: gwSink);
        var packet = Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8]);
        Assert.True(client.SendPacket(packet));
        gwSink.Next();
        var old = net.Datagrams.Last(d => d.From.Equals(clientBind.LocalEndPoint) && d.Data[0] == MessageLayout.TypeTransport && d.Data.Length > 32).Data;

        Advance(net, clock, TimeSpan.FromSeconds(181));
        // Receive side: a packet under the expired session is dropped as expired (before any replay check).
        gwBind.Enqueue(old, clientBind.LocalEndPoint);
        TestNet.WaitFor(() => gw.Counters.ExpiredKey == 1, "the expired session's packet to be refused");
        Assert.Equal(0, gw.Counters.Replayed);

        // Send side: nothing is encrypted under it; a handshake comes first, then the staged packet.
        int transportBefore = net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeTransport);
        net.DropFilter = (from, _, data) => from.Equals(gwBind.LocalEndPoint);
        Assert.True(client.SendPacket(packet));
        TestNet.WaitFor(() => net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeInitiation) == 2, "a new initiation");
        Assert.Equal(transportBefore, net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeTransport));
        net.DropFilter = null;
        Advance(net, clock, TimeSpan.FromSeconds(6));
        Assert.Equal(packet, gwSink.Next());
    }

    [Fact]
    public void DataSentButUnansweredForFifteenSecondsStartsANewHandshake()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var gwSink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(gatewayEgress: gwSink);
        var packet = Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8]);
        Assert.True(client.SendPacket(packet));
        gwSink.Next();
        long heard = client.GetPeer(gwKey.PublicKey)!.ReceivedBytes;
        Advance(net, clock, TimeSpan.FromSeconds(11));      // let the gateway's owed keepalive go out and arrive first
        TestNet.WaitFor(() => client.GetPeer(gwKey.PublicKey)!.ReceivedBytes > heard, "the gateway's keepalive");
        net.DropFilter = (from, _, _) => from.Equals(gwBind.LocalEndPoint); // the gateway falls silent
        int Initiations() => net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeInitiation);

        // Keep sending every second: the clock runs from the first unanswered packet, not the last.
        for (int i = 0; i < 14; i++)
        {
            Assert.True(client.SendPacket(packet));
            gwSink.Next();
            Advance(net, clock, TimeSpan.FromSeconds(1));
        }
        Assert.Equal(1, Initiations());
        Advance(net, clock, TimeSpan.FromSeconds(1.5));
        TestNet.WaitFor(() => Initiations() == 2, "a new handshake 15 s after the first unanswered packet");
    }

    [Fact]
    public void InitiatorReceivingOnANearlyExpiredSessionMakesOneLastMinuteHandshake()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var clientSink = new CaptureEgress();
        var gwSink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(gatewayEgress: gwSink, clientEgress: clientSink);
        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8])));
        gwSink.Next();
        int Initiations() => net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeInitiation);
        net.DropFilter = (from, _, data) => from.Equals(clientBind.LocalEndPoint) && data[0] == MessageLayout.TypeInitiation;

        Advance(net, clock, TimeSpan.FromSeconds(164));
        Assert.True(gw.SendPacket(Packets.UdpV4("10.8.0.1", "10.8.0.2", 3, 4, new byte[8])));
        clientSink.Next();
        Assert.Equal(1, Initiations());                // 164 s: not yet

        Advance(net, clock, TimeSpan.FromSeconds(2));
        Assert.True(gw.SendPacket(Packets.UdpV4("10.8.0.1", "10.8.0.2", 3, 4, new byte[8])));
        clientSink.Next();
        TestNet.WaitFor(() => Initiations() == 2, "the last-minute handshake at 165 s");
        Advance(net, clock, TimeSpan.FromSeconds(6));       // past Rekey-Timeout, so only the flag can hold it back
        int afterRetry = Initiations();                // (the retransmission timer may have retried once)
        Assert.True(gw.SendPacket(Packets.UdpV4("10.8.0.1", "10.8.0.2", 3, 4, new byte[8])));
        clientSink.Next();
        Assert.Equal(afterRetry, Initiations());
    }

    [Fact]
    public void PassiveKeepaliveFollowsReceivedDataAfterKeepaliveTimeout()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var gwSink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(gatewayEgress: gwSink);

        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8])));
        gwSink.Next();
        int Keepalives() => net.Datagrams.Count(d => d.From.Equals(gwBind.LocalEndPoint) && d.Data[0] == MessageLayout.TypeTransport && d.Data.Length == 32);
        Assert.Equal(0, Keepalives());
        Advance(net, clock, TimeSpan.FromSeconds(9.5));
        Assert.Equal(0, Keepalives());
        Advance(net, clock, TimeSpan.FromSeconds(1));
        TestNet.WaitFor(() => Keepalives() == 1, "one keepalive 10 s after data that went unanswered");
        Advance(net, clock, TimeSpan.FromSeconds(30));
        Assert.Equal(1, Keepalives());                // only one per received-data event
    }

    [Fact]
    public void PersistentKeepaliveMakesTheGatewayContactThePeerFirstAndKeepSending()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var (client, clientKey, clientBind) = net.Create();
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"]));
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"], clientBind.LocalEndPoint, keepalive: 25));

        Advance(net, clock, TimeSpan.FromSeconds(1));
        TestNet.WaitFor(() => gw.Counters.Handshakes == 1, "the gateway to initiate on its own");
        Assert.Equal(1, net.CountSent(gwBind.LocalEndPoint, MessageLayout.TypeInitiation));
        int Keepalives() => net.Datagrams.Count(d => d.From.Equals(gwBind.LocalEndPoint) && d.Data[0] == MessageLayout.TypeTransport && d.Data.Length == 32);
        int first = Keepalives();
        Advance(net, clock, TimeSpan.FromSeconds(51));
        TestNet.WaitFor(() => Keepalives() >= first + 2, "a keepalive every 25 s");
    }

    [Fact]
    public void AllKeysOfASilentPeerAreErasedAfterThreeRejectAfterTimes()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var sink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(clientEgress: sink);
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        sink.Next();
        net.DropFilter = (_, _, _) => true; // the client disappears

        Advance(net, clock, TimeSpan.FromSeconds(530));
        Assert.True(gw.HasKeyMaterial(clientKey.PublicKey));
        Advance(net, clock, TimeSpan.FromSeconds(12));
        TestNet.WaitFor(() => !gw.HasKeyMaterial(clientKey.PublicKey), "keys erased after 540 s");
    }
    [Fact]
    public void TheSweepVisitsOnlyPeersWithSomethingDueAndForgetsThemWhenTheyAreIdleAgain()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var sink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(clientEgress: sink);
        for (int i = 0; i < 200; i++)
            gw.AddPeer(TestNet.Peer(WgEngine.Crypto.WgPrivateKey.Generate().PublicKey, [$"10.9.{i / 250}.{i % 250 + 1}/32"]));
        // A peer with a persistent keepalive and an endpoint always has something due.
        var keepalivePeer = WgEngine.Crypto.WgPrivateKey.Generate().PublicKey;
        gw.AddPeer(TestNet.Peer(keepalivePeer, ["10.9.9.9/32"], new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9), keepalive: 25));
        Advance(net, clock, TimeSpan.FromMilliseconds(300));
        TestNet.WaitFor(() => gw.TimerPeerCount == 1, "only the keepalive peer on the sweep's list of 202 peers");

        // Traffic puts the client on the list (keys to erase, a keepalive owed)...
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        sink.Next();
        Advance(net, clock, TimeSpan.FromMilliseconds(300));
        Assert.Equal(2, gw.TimerPeerCount);
        // ...and its timers still work from there: the keys are erased after 3 x Reject-After-Time...
        net.DropFilter = (_, _, _) => true;
        Advance(net, clock, TimeSpan.FromSeconds(545));
        TestNet.WaitFor(() => !gw.HasKeyMaterial(clientKey.PublicKey), "keys erased after 540 s");
        // ...after which nothing is due and it leaves the list.
        Advance(net, clock, TimeSpan.FromMilliseconds(300));
        TestNet.WaitFor(() => gw.TimerPeerCount == 1, "the silent client off the list");

        // Removing the keepalive peer takes it off too.
        Assert.True(gw.RemovePeer(keepalivePeer));
        Advance(net, clock, TimeSpan.FromMilliseconds(300));
        TestNet.WaitFor(() => gw.TimerPeerCount == 0, "no peer on the list");
    }
}
