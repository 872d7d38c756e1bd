using Microsoft.Extensions.Time.Testing;
using WgEngine.Noise;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>The whitepaper's §6 timers, driven by a fake clock; what goes on the wire is asserted.</summary>
public class TimerTests
{
    private static FakeTimeProvider NewClock() => new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>Moves the fake clock in 100 ms steps (the sweep's tick), letting the device threads run.</summary>
    private static void Advance(FakeTimeProvider clock, TimeSpan by)
    {
        for (var t = TimeSpan.Zero; t < by; t += TimeSpan.FromMilliseconds(100))
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void UnansweredInitiationIsRetriedEveryRekeyTimeoutThenAbandoned()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var (client, clientKey, clientBind) = net.Create();
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        net.DropFilter = (_, to, _) => to.Equals(gwBind.LocalEndPoint); // the gateway is unreachable

        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        int Sent() => net.CountSent(clientBind.LocalEndPoint, MessageLayout.TypeInitiation);
        TestNet.WaitFor(() => Sent() == 1, "the first initiation");

        Advance(clock, TimeSpan.FromMilliseconds(4900));
        Assert.Equal(1, Sent());                       // not before Rekey-Timeout
        Advance(clock, TimeSpan.FromMilliseconds(500));
        TestNet.WaitFor(() => Sent() == 2, "the first retry within 5 s + 333 ms jitter");

        Advance(clock, TimeSpan.FromSeconds(120));
        int total = Sent();
        // Retries stop at Rekey-Attempt-Time (90 s): about 90 / 5.17 of them, never more than 18 + 1.
        Assert.InRange(total, 17, 19);
        Advance(clock, TimeSpan.FromSeconds(30));
        Assert.Equal(total, Sent());
    }

    [Fact]
    public void PassiveKeepaliveFollowsReceivedDataAfterKeepaliveTimeout()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var gwSink = new CaptureEgress();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"], gwSink);
        var (client, clientKey, clientBind) = net.Create();
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));

        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[8])));
        gwSink.Next();
        int Keepalives() => net.Datagrams.Count(d => d.From.Equals(gwBind.LocalEndPoint) && d.Data[0] == MessageLayout.TypeTransport && d.Data.Length == 32);
        Assert.Equal(0, Keepalives());
        Advance(clock, TimeSpan.FromSeconds(9.5));
        Assert.Equal(0, Keepalives());
        Advance(clock, TimeSpan.FromSeconds(1));
        TestNet.WaitFor(() => Keepalives() == 1, "one keepalive 10 s after data that went unanswered");
        Advance(clock, TimeSpan.FromSeconds(30));
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

        Advance(clock, TimeSpan.FromSeconds(1));
        TestNet.WaitFor(() => gw.Counters.Handshakes == 1, "the gateway to initiate on its own");
        Assert.Equal(1, net.CountSent(gwBind.LocalEndPoint, MessageLayout.TypeInitiation));
        int Keepalives() => net.Datagrams.Count(d => d.From.Equals(gwBind.LocalEndPoint) && d.Data[0] == MessageLayout.TypeTransport && d.Data.Length == 32);
        int first = Keepalives();
        Advance(clock, TimeSpan.FromSeconds(51));
        TestNet.WaitFor(() => Keepalives() >= first + 2, "a keepalive every 25 s");
    }

    [Fact]
    public void AllKeysOfASilentPeerAreErasedAfterThreeRejectAfterTimes()
    {
        var clock = NewClock();
        using var net = new TestNet(clock);
        var sink = new CaptureEgress();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var (client, clientKey, clientBind) = net.Create(egress: sink);
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        sink.Next();
        net.DropFilter = (_, _, _) => true; // the client disappears

        Advance(clock, TimeSpan.FromSeconds(530));
        Assert.True(gw.HasKeyMaterial(clientKey.PublicKey));
        Advance(clock, TimeSpan.FromSeconds(12));
        TestNet.WaitFor(() => !gw.HasKeyMaterial(clientKey.PublicKey), "keys erased after 540 s");
    }
}
