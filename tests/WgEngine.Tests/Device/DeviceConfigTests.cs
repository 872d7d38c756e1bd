using System.Net;
using System.Net.Sockets;
using WgEngine.Conn;
using WgEngine.Crypto;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>Interface-wide changes while running: private key (UAPI private_key) and the rebindable UDP socket.</summary>
public class DeviceConfigTests
{
    [Fact]
    public void A_new_private_key_drops_sessions_and_peers_then_handshake_with_the_new_identity()
    {
        using var net = new TestNet();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var sink = new CaptureEgress();
        var (client, clientKey, _) = net.Create(egress: sink);
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["10.8.0.0/24"], gwBind.LocalEndPoint));
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        sink.Next();

        using var newKey = WgPrivateKey.Generate();
        gw.SetPrivateKey(newKey);
        Assert.Equal(newKey.PublicKey, gw.PublicKey);
        // The client only knows the new identity: the old sessions are gone on the gateway, so it must handshake afresh.
        client.RemovePeer(gwKey.PublicKey);
        client.AddPeer(TestNet.Peer(newKey.PublicKey, ["10.8.0.0/24"], gwBind.LocalEndPoint));
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 2)));
        sink.Next();
        Assert.Equal(2, gw.Counters.Handshakes);
    }

    [Fact]
    public void Setting_a_peers_key_as_the_private_key_removes_that_peer()
    {
        using var net = new TestNet();
        var (gw, _, _) = net.Create(["10.8.0.1/24"]);
        using var k = WgPrivateKey.Generate();
        gw.AddPeer(TestNet.Peer(k.PublicKey, ["10.8.0.2/32"]));
        gw.SetPrivateKey(k);
        Assert.Null(gw.GetPeer(k.PublicKey));
    }

    [Fact]
    public async Task Rebind_moves_a_blocked_receive_to_the_new_port()
    {
        using var bind = new RebindableBind(0, IPAddress.Loopback);
        int oldPort = bind.Port;
        var received = new TaskCompletionSource<int>();
        var thread = new Thread(() =>
        {
            var buf = new byte[64];
            var from = new IPEndPoint(IPAddress.Any, 0).Serialize();
            received.TrySetResult(bind.Receive(buf, from));   // blocks across the rebind
        }) { IsBackground = true };
        thread.Start();
        Thread.Sleep(50);   // let the receiver block on the first socket (the test holds either way)
        bind.Rebind(0);
        Assert.NotEqual(oldPort, bind.Port);
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        sender.SendTo("hello"u8, new IPEndPoint(IPAddress.Loopback, bind.Port));
        // WaitAsync throws TimeoutException if the receive did not continue on the new socket.
        Assert.Equal(5, await received.Task.WaitAsync(TimeSpan.FromSeconds(5)));
        bind.Dispose();
    }

    [Fact]
    public void Rebind_to_a_taken_port_fails_and_keeps_the_old_socket()
    {
        using var bind = new RebindableBind(0, IPAddress.Loopback);
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        other.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int taken = ((IPEndPoint)other.LocalEndPoint!).Port;
        int before = bind.Port;
        Assert.Throws<SocketException>(() => bind.Rebind(taken));
        Assert.Equal(before, bind.Port);
    }

    [Fact]
    public async Task Dispose_ends_a_blocked_receive()
    {
        var bind = new RebindableBind(0, IPAddress.Loopback);
        var result = new TaskCompletionSource<int>();
        var thread = new Thread(() =>
        {
            var from = new IPEndPoint(IPAddress.Any, 0).Serialize();
            result.TrySetResult(bind.Receive(new byte[16], from));
        }) { IsBackground = true };
        thread.Start();
        Thread.Sleep(50);
        bind.Dispose();
        Assert.Equal(-1, await result.Task.WaitAsync(TimeSpan.FromSeconds(5)));
    }
}
