using System.Net;
using WgEngine.Noise;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>Two or three engines talking through an in-memory network: handshake, hub, ICMP, drops.</summary>
public class DeviceHandshakeTests
{
    [Fact]
    public void ClientPingsGatewayAddressAndGetsTheEchoReply()
    {
        using var net = new TestNet();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var sink = new CaptureEgress();
        var (client, clientKey, clientBind) = net.Create(egress: sink);
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));

        var request = Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 7, 1);
        Assert.True(client.SendPacket(request));
        var reply = sink.Next();

        Assert.Equal(0, reply[20]);                                   // echo reply
        Assert.Equal(request.AsSpan(12, 4).ToArray(), reply.AsSpan(16, 4).ToArray()); // back to the client
        Assert.Equal(request.AsSpan(24).ToArray(), reply.AsSpan(24).ToArray());        // id, seq, data kept
        Assert.Equal(1, gw.Counters.Handshakes);
        Assert.Equal(1, gw.Counters.EchoReplies);

        var status = gw.GetPeer(clientKey.PublicKey)!;
        Assert.NotNull(status.LatestHandshake);
        Assert.Equal(clientBind.LocalEndPoint, status.Endpoint);
        Assert.True(status.ReceivedBytes > 0 && status.SentBytes > 0);
        Assert.Equal(0, gw.Counters.TotalDropped);
    }

    [Fact]
    public void HubForwardsBetweenPeersAndGatewayInitiatesToAPeerWithAKnownEndpoint()
    {
        using var net = new TestNet();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var sinkA = new CaptureEgress();
        var sinkB = new CaptureEgress();
        var (a, aKey, _) = net.Create(egress: sinkA);
        var (b, bKey, bBind) = net.Create(egress: sinkB);
        gw.AddPeer(TestNet.Peer(aKey.PublicKey, ["10.8.0.2/32"]));
        // The gateway knows B's endpoint, and B has never talked: the gateway must initiate to B itself.
        gw.AddPeer(TestNet.Peer(bKey.PublicKey, ["10.8.0.3/32"], bBind.LocalEndPoint));
        a.AddPeer(TestNet.Peer(gwKey.PublicKey, ["10.8.0.0/24"], gwBind.LocalEndPoint));
        b.AddPeer(TestNet.Peer(gwKey.PublicKey, ["10.8.0.0/24"]));

        var packet = Packets.UdpV4("10.8.0.2", "10.8.0.3", 5000, 6000, "hello through the hub"u8.ToArray());
        Assert.True(a.SendPacket(packet));
        Assert.Equal(packet, sinkB.Next());
        Assert.Equal(1, net.CountSent(gwBind.LocalEndPoint, MessageLayout.TypeInitiation));
        Assert.Equal(2, gw.Counters.Handshakes);

        // And back, over the sessions that now exist: no new handshake.
        var back = Packets.UdpV4("10.8.0.3", "10.8.0.2", 6000, 5000, "and back"u8.ToArray());
        Assert.True(b.SendPacket(back));
        Assert.Equal(back, sinkA.Next());
        Assert.Equal(2, gw.Counters.Handshakes);
    }

    [Fact]
    public void PacketWithASourceOutsideThePeersAllowedIPsIsDroppedAndCounted()
    {
        using var net = new TestNet();
        var gwSink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, _) = net.GatewayWithClient(gatewayEgress: gwSink);

        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.99", "192.0.2.1", 1, 2, new byte[10])));
        TestNet.WaitFor(() => gw.Counters.NotAllowedSource == 1, "the spoofed packet to be counted");
        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "192.0.2.1", 1, 2, new byte[10])));
        Assert.Equal(10, gwSink.Next().Length - 28);
        Assert.Equal(1, gw.Counters.NotAllowedSource);
    }

    [Fact]
    public void RemovedPeerIsCutOffAtOnce()
    {
        using var net = new TestNet();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var sink = new CaptureEgress();
        var (client, clientKey, _) = net.Create(egress: sink);
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        sink.Next();

        Assert.True(gw.RemovePeer(clientKey.PublicKey));
        Assert.Null(gw.GetPeer(clientKey.PublicKey));
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 2)));
        TestNet.WaitFor(() => gw.Counters.UnknownIndex >= 1, "the old session's packet to be refused");
        Assert.False(sink.Packets.TryTake(out _, 200));
        Assert.Equal(1, gw.Counters.EchoReplies);
    }

    [Fact]
    public void ResponderWaitsForTheInitiatorsFirstPacketBeforeUsingTheNewSession()
    {
        using var net = new TestNet();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var sink = new CaptureEgress();
        var (client, clientKey, clientBind) = net.Create(egress: sink);
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"], clientBind.LocalEndPoint));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));

        // Lose the client's transport packets (so the gateway holds the session only as "next") and the
        // gateway's own initiations (so it cannot make a session of its own meanwhile).
        net.DropFilter = (from, _, data) =>
            (from.Equals(clientBind.LocalEndPoint) && data[0] == MessageLayout.TypeTransport) ||
            (from.Equals(gwBind.LocalEndPoint) && data[0] == MessageLayout.TypeInitiation);
        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "10.8.0.1", 1, 2, new byte[4])));
        TestNet.WaitFor(() => client.Counters.Handshakes == 1, "the client's side of the handshake");
        // Unconfirmed on the gateway: no latest handshake is reported yet (as wireguard-go reports it).
        Assert.Equal(0, gw.Counters.Handshakes);
        Assert.Null(gw.GetPeer(clientKey.PublicKey)!.LatestHandshake);

        // The gateway has data for the client but no confirmed session: it must not encrypt with "next".
        int transportBefore = net.CountSent(gwBind.LocalEndPoint, MessageLayout.TypeTransport);
        Assert.True(gw.SendPacket(Packets.UdpV4("10.8.0.1", "10.8.0.2", 9, 9, new byte[4])));
        Assert.Equal(transportBefore, net.CountSent(gwBind.LocalEndPoint, MessageLayout.TypeTransport));

        // Once the client's data arrives under the new session, the staged packet flows.
        net.DropFilter = null;
        Assert.True(client.SendPacket(Packets.UdpV4("10.8.0.2", "10.8.0.1", 1, 2, new byte[4])));
        var delivered = sink.Next();
        Assert.Equal(9, delivered[21]);
        Assert.Equal(1, gw.Counters.Handshakes);
        Assert.NotNull(gw.GetPeer(clientKey.PublicKey)!.LatestHandshake);
    }
}
