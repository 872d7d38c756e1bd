using System.Net;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Egress;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;
using static WgEngine.Tests.Egress.EgressPackets;

namespace WgEngine.Tests.Egress;

/// <summary>
/// A client device talks through the tunnel to a gateway backend built with the userspace egress; the
/// egress re-dials from this host and the answer travels back through the tunnel to the client.
/// </summary>
public class EgressEndToEndTests
{
    private static int _nextPort = 39000;

    private static (UserspaceBackend Gateway, ClientSide Client) Build(TestNet net, EgressMode mode, EgressOptions? options)
    {
        var gwKey = WgPrivateKey.Generate();
        var gwBind = net.Network.CreateBind(Interlocked.Increment(ref _nextPort));
        var gateway = new UserspaceBackend(new InterfaceConfig
        {
            PrivateKey = gwKey,
            Addresses = [IpPrefix.Parse("10.8.0.1/24")],
            Egress = mode,
            EgressOptions = options,
        }, gwBind);
        var clientSink = new CaptureEgress();
        var (client, clientKey, _) = net.Create(egress: clientSink);
        gateway.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        return (gateway, new ClientSide(client, clientSink));
    }

    internal sealed record ClientSide(WgEngine.Device.WgDevice Device, CaptureEgress Received);

    [Fact]
    public void A_client_gets_its_udp_reply_from_a_host_service_through_the_tunnel()
    {
        using var net = new TestNet();
        using var server = new UdpEchoServer(IPAddress.Loopback);
        var (gateway, client) = Build(net, EgressMode.Userspace, new EgressOptions { Allow = [IpPrefix.Parse("127.0.0.1/32")] });
        using var _ = gateway;
        var data = "what is the time?"u8.ToArray();
        Assert.True(client.Device.SendPacket(Udp("10.8.0.2", "127.0.0.1", 33000, server.Port, data)));

        var reply = client.Received.Next();
        Assert.True(IpHeaderLength(reply, out int length));
        reply = reply[..length];   // the tunnel pads plaintext to 16 bytes
        AssertValid(reply);
        Assert.Equal(IPAddress.Loopback, Source(reply));
        Assert.Equal(IPAddress.Parse("10.8.0.2"), Destination(reply));
        Assert.Equal(server.Port, U16(Payload(reply), 0));
        Assert.Equal(33000, U16(Payload(reply), 2));
        Assert.Equal(data, Payload(reply).Slice(8).ToArray());
        Assert.Equal(1, gateway.EgressCounters!.UdpFlowsOpened);
    }

    [Fact]
    public void A_client_is_told_at_once_that_the_gateway_host_itself_is_off_limits()
    {
        using var net = new TestNet();
        var (gateway, client) = Build(net, EgressMode.Userspace, null);   // default policy: no host loopback
        using var _ = gateway;
        Assert.True(client.Device.SendPacket(Udp("10.8.0.2", "127.0.0.1", 33000, 22, [1])));

        var reply = client.Received.Next();
        Assert.True(IpHeaderLength(reply, out int length));
        reply = reply[..length];
        AssertValid(reply);
        Assert.Equal(IPAddress.Parse("10.8.0.1"), Source(reply));
        Assert.Equal((3, 13), (Payload(reply)[0], Payload(reply)[1]));
        Assert.Equal(1, gateway.EgressCounters!.Denied);
    }

    [Fact]
    public void Egress_none_has_no_counters_and_tun_without_a_valid_name_changes_nothing()
    {
        using var net = new TestNet();
        var (gateway, client) = Build(net, EgressMode.None, null);
        using (gateway)
        {
            Assert.Null(gateway.EgressCounters);
            Assert.True(client.Device.SendPacket(Udp("10.8.0.2", "127.0.0.1", 33000, 22, [1])));
            TestNet.WaitFor(() => gateway.Device.Counters.NoRoute == 1, "the gateway to drop the packet (no egress)");
            Assert.False(client.Received.Packets.TryTake(out _, 100));
        }
        // Tun is wired to the TUN device; without a name it fails before any interface exists.
        var e = Assert.Throws<WgException>(() => Build(net, EgressMode.Tun, null));
        Assert.Equal("InvalidTunName", e.ErrorId);
    }

    private static bool IpHeaderLength(byte[] p, out int totalLength) =>
        WgEngine.PacketPlane.IpHeader.TryParse(p, out var info) & (totalLength = info.TotalLength) > 0;
}

public class EgressWiringTests
{
    [Fact]
    public void A_default_server_runs_the_userspace_egress_and_shows_its_counters()
    {
        using (var s = VPNServer.Start(new ServerOptions { Name = "eg", ListenPort = 0 }))
        {
            Assert.Equal(EgressMode.Userspace, s.Egress);
            Assert.NotNull(s.EgressCounters);
            Assert.Equal(0, s.EgressCounters!.UdpFlowsActive);
        }
        using (var s = VPNServer.Start(new ServerOptions { Name = "eg", ListenPort = 0, Egress = EgressMode.None }))
            Assert.Null(s.EgressCounters);
    }

    [Fact]
    public void The_late_bound_sink_drops_until_attached_and_attaches_once()
    {
        var sink = new LateBoundPacketSink();
        Assert.False(sink.SendPacket([0x45]));
        var target = new CaptureSink();
        sink.Attach(target);
        Assert.True(sink.SendPacket([0x45, 1]));
        Assert.Equal([0x45, 1], target.Next());
        Assert.Throws<InvalidOperationException>(() => sink.Attach(new CaptureSink()));
    }
}
