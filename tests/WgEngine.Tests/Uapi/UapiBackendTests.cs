using System.Net;
using System.Net.Sockets;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Uapi;

namespace WgEngine.Tests.Uapi;

/// <summary>UapiBackend (client) against our own engine's UAPI server: the device settings and peers round-trip.</summary>
public sealed class UapiBackendTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("uapi-backend-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
        s.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    [Fact]
    public void Configures_the_device_then_adds_updates_exports_and_removes_peers()
    {
        var path = Path.Combine(_dir, "dev.sock");
        using var device = VPNServer.Start(new ServerOptions { Name = "dev", ListenPort = 0, UapiPath = path });
        using var key = WgPrivateKey.Generate();
        int port = FreeUdpPort();

        using var backend = new UapiBackend(path, key, port);
        Assert.Equal(key.PublicKey, backend.PublicKey);
        Assert.Equal(key.PublicKey, device.PublicKey);          // the device took the key...
        Assert.Equal(port, device.ListenPort);                  // ...and moved to the port
        Assert.Equal(port, backend.ListenPort);

        var peer = WgPrivateKey.Generate().PublicKey;
        var psk = WgPrivateKey.Generate().PublicKey;
        backend.AddPeer(new PeerConfig
        {
            PublicKey = peer, AllowedIPs = [IpPrefix.Parse("10.8.0.5/32")], PresharedKey = psk,
            Endpoint = new IPEndPoint(IPAddress.Loopback, 1234), PersistentKeepalive = 9,
        });
        Assert.Throws<WgException>(() => backend.AddPeer(new PeerConfig { PublicKey = peer }));
        var seen = Assert.Single(device.GetPeers());
        Assert.Equal(peer, seen.PublicKey);
        Assert.True(seen.HasPresharedKey);
        Assert.Equal(9, seen.PersistentKeepalive);

        backend.UpdatePeer(new PeerConfig { PublicKey = peer, AllowedIPs = [IpPrefix.Parse("10.8.0.6/32")] });
        var exported = Assert.Single(backend.ExportPeers());
        Assert.Equal([IpPrefix.Parse("10.8.0.6/32")], exported.AllowedIPs);
        Assert.Null(exported.PresharedKey);                     // the update said "no preshared key"
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 1234), exported.Endpoint);   // endpoint kept when not given

        Assert.True(backend.RemovePeer(peer));
        Assert.False(backend.RemovePeer(peer));
        Assert.Empty(device.GetPeers());

        backend.Stop();
        Assert.False(backend.IsRunning);
        Assert.Equal(ServerState.Running, device.State);        // stop managing leaves the device running
    }

    [Fact]
    public void Keeps_the_devices_key_and_port_when_none_are_given()
    {
        var path = Path.Combine(_dir, "keep.sock");
        using var device = VPNServer.Start(new ServerOptions { Name = "keep", ListenPort = 0, UapiPath = path });
        using var backend = new UapiBackend(path, null, null);
        Assert.Equal(device.PublicKey, backend.PublicKey);
        Assert.Equal(device.ListenPort, backend.ListenPort);
    }

    [Fact]
    public void A_missing_device_is_a_clear_error()
    {
        var e = Assert.Throws<WgException>(() => new UapiBackend(Path.Combine(_dir, "none.sock"), null, null));
        Assert.Equal("UapiDeviceUnavailable", e.ErrorId);
    }
}
