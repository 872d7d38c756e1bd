using Microsoft.Extensions.Time.Testing;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Net;
using WgEngine.Noise;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>Cookies end to end between two engines: a responder under load, our device as the initiator.</summary>
public class CookieUnderLoadTests
{
    private static void Advance(FakeTimeProvider clock, TimeSpan by)
    {
        for (var t = TimeSpan.Zero; t < by; t += TimeSpan.FromMilliseconds(100))
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void InitiatorAnsweredWithACookieRetriesWithAValidMac2AndCompletesTheHandshake()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var net = new TestNet(clock);
        // The responder is forced under load for good: threshold 0 queued messages.
        var gwKey = WgPrivateKey.Generate();
        var gwBind = net.Network.CreateBind(41000);
        using var gw = new WgDevice(gwKey, gwBind, new DeviceOptions
        {
            TimeProvider = clock, Addresses = [IpPrefix.Parse("10.8.0.1/24")], Workers = 1, HandshakeLoadThreshold = 0,
        });
        gw.Start();
        var sink = new CaptureEgress();
        var (client, clientKey, clientBind) = net.Create(egress: sink);
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));

        byte[][] Initiations() => net.Datagrams.Where(d => d.From.Equals(clientBind.LocalEndPoint) && d.Data[0] == MessageLayout.TypeInitiation)
            .Select(d => d.Data).ToArray();
        static bool HasMac2(byte[] m) => m.AsSpan(m.Length - 16).ContainsAnyExcept((byte)0);

        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 9, 1)));
        TestNet.WaitFor(() => gw.Counters.CookieReplies == 1, "the cookie reply to the first initiation");
        Assert.False(HasMac2(Initiations().Single()));       // no cookie yet: mac2 is zero
        Assert.Equal(0, gw.Counters.Handshakes);             // and no Diffie-Hellman was spent on it
        Assert.Equal(1, net.CountSent(gwBind.LocalEndPoint, MessageLayout.TypeCookieReply));

        // Not resent at once: the retry comes with the retransmission timer (Rekey-Timeout + jitter).
        Advance(clock, TimeSpan.FromMilliseconds(4900));
        Assert.Single(Initiations());
        Advance(clock, TimeSpan.FromMilliseconds(500));
        TestNet.WaitFor(() => Initiations().Length == 2, "the retry");
        Assert.True(HasMac2(Initiations()[1]));

        // The responder, still under load, accepts it (valid mac2, source within its rate) and answers.
        TestNet.WaitFor(() => gw.Counters.Handshakes == 1 && client.Counters.Handshakes == 1, "the handshake after the retry");
        Assert.Equal(1, gw.Counters.CookieReplies);
        Assert.Equal(0, gw.Counters.RateLimited);
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 9, 2)));
        Assert.Equal(0, sink.Next()[20]);                    // an echo reply came back through the session
    }

    [Fact]
    public void UnderLoadASourceOverItsRateIsDroppedEvenWithAValidMac2()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var net = new TestNet(clock);
        var gwKey = WgPrivateKey.Generate();
        var gwBind = net.Network.CreateBind(41001);
        using var gw = new WgDevice(gwKey, gwBind, new DeviceOptions { TimeProvider = clock, Workers = 1, HandshakeLoadThreshold = 0 });
        gw.Start();
        var (client, clientKey, clientBind) = net.Create();
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));

        // Get a cookie, then replay the client's mac2-carrying retry many times from its address at one instant.
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        TestNet.WaitFor(() => gw.Counters.CookieReplies == 1, "the cookie reply");
        Advance(clock, TimeSpan.FromMilliseconds(5400));
        TestNet.WaitFor(() => gw.Counters.Handshakes == 1, "the handshake with mac2");
        var retry = net.Datagrams.Last(d => d.From.Equals(clientBind.LocalEndPoint) && d.Data[0] == MessageLayout.TypeInitiation).Data;
        var replayer = net.Network.CreateBind(clientBind.LocalEndPoint.Port + 1000); // same IP, other port
        for (int i = 0; i < 20; i++) replayer.Send(retry, gwBind.LocalEndPoint.Serialize());

        // mac2 is bound to the source port too, so these fail mac2 and get cookies; from the client's own
        // address and port they pass mac2 and hit the bucket instead.
        TestNet.WaitFor(() => gw.Counters.CookieReplies == 21, "cookie replies to the other port");
        for (int i = 0; i < 20; i++) clientBind.Send(retry, gwBind.LocalEndPoint.Serialize());
        // A new source starts at 5 - 1 tokens (one spent on the real retry), and the clock ran on for up to
        // 300 ms after the retry (refilling at most to 5). With it frozen now, "tokens > cost" lets 3 or 4
        // through (each then refused as a replayed TAI64N); the rest are rate limited.
        TestNet.WaitFor(() => gw.Counters.RateLimited + gw.Counters.HandshakeReplayed == 20, "all 20 replays judged");
        Assert.InRange(gw.Counters.RateLimited, 16, 17);
        Assert.Equal(1, gw.Counters.Handshakes);
    }
}
