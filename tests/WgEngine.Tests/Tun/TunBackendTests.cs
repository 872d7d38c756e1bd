using System.Net;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Tun;

/// <summary>EgressMode.Tun in the userspace backend: a client's packet leaves through the TUN into the
/// namespace's kernel stack, and the kernel's reply comes back through the tunnel.</summary>
public class TunBackendTests
{
    [TunFact]
    public void A_client_pings_a_host_address_behind_the_tun_through_the_tunnel()
    {
        using var ns = new TestNamespace();
        int o = Random.Shared.Next(100, 250);
        ns.Exec("ip", "addr", "add", "192.0.2.77/32", "dev", "lo");   // a "server" only the gateway's host has
        using var net = new TestNet();
        var gwKey = WgPrivateKey.Generate();
        var gwBind = net.Network.CreateBind(47000 + Random.Shared.Next(1000));
        string name = $"wgt{Random.Shared.Next(0x100000):x}";
        using var backend = ns.Inside(() => new UserspaceBackend(new InterfaceConfig
        {
            PrivateKey = gwKey, Name = name, Egress = EgressMode.Tun,
            Addresses = [IpPrefix.Parse($"10.{o}.0.1/24")],
        }, gwBind));
        Assert.Equal(name, backend.TunEgress!.InterfaceName);

        var capture = new CaptureEgress();
        var (client, clientKey, _) = net.Create(egress: capture);
        backend.AddPeer(TestNet.Peer(clientKey.PublicKey, [$"10.{o}.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));

        var request = Packets.EchoRequestV4($"10.{o}.0.2", "192.0.2.77", 0x5151, 3);
        Assert.True(client.SendPacket(request));
        var reply = capture.Next(TimeSpan.FromSeconds(10));
        Assert.Equal(1, reply[9]);                                                          // ICMP
        Assert.Equal(0, reply[20]);                                                         // echo reply
        Assert.Equal(IPAddress.Parse("192.0.2.77").GetAddressBytes(), reply.AsSpan(12, 4).ToArray());
        Assert.Equal(IPAddress.Parse($"10.{o}.0.2").GetAddressBytes(), reply.AsSpan(16, 4).ToArray());
        Assert.Equal(request.AsSpan(24, 4).ToArray(), reply.AsSpan(24, 4).ToArray());
        Assert.True(backend.TunEgress.Counters.ToHostPackets >= 1);

        backend.Stop();
        TestNet.WaitFor(() => ns.Exec("ip", "link", "show", "dev", name).Code != 0, "the TUN to go with the server");
    }

    [Fact]
    public void A_name_too_long_for_a_tun_fails_before_anything_is_created_and_frees_the_port()
    {
        var network = new WgEngine.Conn.ChannelNetwork();
        var bind = network.CreateBind(47999);
        var e = Assert.Throws<WgException>(() => new UserspaceBackend(new InterfaceConfig
        {
            PrivateKey = WgPrivateKey.Generate(), Name = "a-name-longer-than-15", Egress = EgressMode.Tun,
            Addresses = [IpPrefix.Parse("10.8.0.1/24")],
        }, bind));
        Assert.Equal("InvalidTunName", e.ErrorId);
        network.CreateBind(47999).Dispose();   // the failed backend released its bind
    }
}
