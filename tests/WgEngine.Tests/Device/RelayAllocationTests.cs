using System.Net;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>
/// The cross-instance hub allocates nothing per packet once warm: client a on gateway A, client b on gateway B,
/// A's and B's meshes between them, all over real UDP on loopback (six devices, three tunnels per packet).
/// </summary>
[Collection(MemoryMeasurement.Name)]
public class RelayAllocationTests
{
    private const int Buffers = 4096;

    private static WgDevice NewDevice(WgPrivateKey key, IEgress? egress = null, string? address = null) =>
        new(key, new UdpBind(0, IPAddress.Loopback), new DeviceOptions
        {
            PreallocatedBuffers = Buffers, Egress = egress, Addresses = address is null ? [] : [IpPrefix.Parse(address)],
        });

    private static IPEndPoint At(WgDevice d) => new(IPAddress.Loopback, d.ListenPort);

    [Fact]
    public void RelayingThroughTheMeshAllocatesNothingPerPacket()
    {
        WgPrivateKey gwAKey = WgPrivateKey.Generate(), gwBKey = WgPrivateKey.Generate(), aKey = WgPrivateKey.Generate(), bKey = WgPrivateKey.Generate();
        var sink = new CountingEgress();
        using var gwA = NewDevice(gwAKey, address: "10.8.0.1/24");
        using var gwB = NewDevice(gwBKey, address: "10.8.0.1/24");
        using var a = NewDevice(aKey);
        using var b = NewDevice(bKey, sink);
        gwA.AddPeer(TestNet.Peer(aKey.PublicKey, ["10.8.0.2/32"]));
        gwA.AddPeer(TestNet.Peer(bKey.PublicKey, ["10.8.0.3/32"]));   // b's session is on B
        gwB.AddPeer(TestNet.Peer(aKey.PublicKey, ["10.8.0.2/32"]));
        gwB.AddPeer(TestNet.Peer(bKey.PublicKey, ["10.8.0.3/32"], At(b)));
        a.AddPeer(TestNet.Peer(gwAKey.PublicKey, ["10.8.0.0/24"], At(gwA)));
        b.AddPeer(TestNet.Peer(gwBKey.PublicKey, ["10.8.0.0/24"], At(gwB)));
        gwA.Start(); gwB.Start(); a.Start(); b.Start();
        using var meshA = MeshTunnel.Start(gwA, WgPrivateKey.Generate(), new UdpBind(0, IPAddress.Loopback), TimeProvider.System, Buffers);
        using var meshB = MeshTunnel.Start(gwB, WgPrivateKey.Generate(), new UdpBind(0, IPAddress.Loopback), TimeProvider.System, Buffers);
        meshA.SetPeers([new MeshPeer(meshB.NodeKey, At(meshB.Device), [IpPrefix.Parse("10.8.0.3/32")])]);
        meshB.SetPeers([new MeshPeer(meshA.NodeKey, At(meshA.Device), [IpPrefix.Parse("10.8.0.2/32")])]);
        WgDevice[] all = [gwA, gwB, a, b, meshA.Device, meshB.Device];

        var packet = Packets.UdpV4("10.8.0.2", "10.8.0.3", 1000, 2000, new byte[1200]);
        // Three handshakes first, then warm pools and JIT.
        TestNet.WaitFor(() => { a.SendPacket(packet); Thread.Sleep(50); return Interlocked.Read(ref sink.Count) > 0; }, "the first packet across the mesh", 15_000);
        PacketPump.Run(a, packet, sink, 2000);

        const int N = 20000;
        double best = PacketPump.BestBytesPerPacket(all, a, packet, sink, N);
        Assert.True(best < 1, $"{best:F1} bytes allocated per packet in the best round");
        Assert.True(all.Sum(d => d.BuffersCreated) == 0, "the pools had to grow: the backlog exceeded the preallocation");
        Assert.True(meshA.Relayed >= 3 * N * 0.95, $"only {meshA.Relayed} packets went through the mesh");
    }
}
