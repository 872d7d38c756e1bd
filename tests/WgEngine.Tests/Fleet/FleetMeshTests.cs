using System.Net;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;
using WgFleet;
using WgFleet.Postgres;

namespace WgEngine.Tests.Fleet;

/// <summary>The cross-instance hub's mesh peers: computed from instances and live state, and kept in sync with a real registry.</summary>
public sealed class FleetMeshTests : IClassFixture<PostgresClusterFixture>
{
    private readonly PostgresClusterFixture _pg;

    public FleetMeshTests(PostgresClusterFixture pg) => _pg = pg;

    private static WgKey NewKey() { using var k = WgPrivateKey.Generate(); return k.PublicKey; }

    private static FleetPeer Peer(WgKey key, string prefix, bool enabled = true) =>
        new() { PublicKey = key, AllowedIPs = [IpPrefix.Parse(prefix)], Enabled = enabled };

    [Fact]
    public void Routes_give_each_live_instance_with_a_mesh_the_prefixes_of_the_sessions_it_holds()
    {
        var now = DateTimeOffset.UtcNow;
        var stale = TimeSpan.FromSeconds(15);
        WgKey nb = NewKey(), nc = NewKey(), nd = NewKey(), ne = NewKey();
        var instances = new[]
        {
            new InstanceInfo("a", null, now, now, 0, 0, 0, false, NewKey(), "127.0.0.1:1000"),         // self
            new InstanceInfo("b", null, now, now, 0, 0, 0, false, nb, "127.0.0.1:1001"),
            new InstanceInfo("c", null, now, now, 0, 0, 0, false, nc, "127.0.0.1:1002"),                // holds nothing: a peer all the same
            new InstanceInfo("d", null, now, now - TimeSpan.FromSeconds(60), 0, 0, 0, false, nd, "127.0.0.1:1003"),   // stale
            new InstanceInfo("e", null, now, now, 0, 0, 0, true, ne, "127.0.0.1:1004"),                 // stopped
            new InstanceInfo("f", null, now, now, 0, 0, 0, false, null, null),                          // no mesh
        };
        WgKey x = NewKey(), y = NewKey(), y2 = NewKey(), off = NewKey(), atD = NewKey(), unknown = NewKey();
        var peers = new[] { Peer(x, "10.8.0.2/32"), Peer(y, "10.8.0.3/32"), Peer(y2, "10.8.0.5/32"), Peer(off, "10.8.0.6/32", enabled: false), Peer(atD, "10.8.0.7/32") }
            .ToDictionary(p => p.PublicKey);
        var live = new Dictionary<WgKey, FleetPeerLive>
        {
            [x] = new("a", null, now, 0, 0), [y] = new("b", null, now, 0, 0), [y2] = new("b", null, now, 0, 0),
            [off] = new("b", null, now, 0, 0), [atD] = new("d", null, now, 0, 0), [unknown] = new("b", null, now, 0, 0),
        };
        var routes = FleetMesh.Routes("a", instances, live, peers, now, stale).ToDictionary(r => r.NodeKey);
        Assert.Equal([nb, nc], routes.Keys.ToArray());
        Assert.Equal(IPEndPoint.Parse("127.0.0.1:1001"), routes[nb].Endpoint);
        Assert.Equal(["10.8.0.3/32", "10.8.0.5/32"], routes[nb].AllowedIPs.Select(p => p.ToString()).Order().ToArray());
        Assert.Empty(routes[nc].AllowedIPs);
    }

    [PostgresFact]
    public async Task Instances_with_a_mesh_publish_their_node_key_and_become_each_others_mesh_peers()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        var y = registry.AddPeer(new PeerSpec { PublicKey = NewKey(), Name = "y" });
        FleetInstance Start(string id) => FleetInstance.Start(
            PostgresFleetRegistry.Open(_pg.Cluster.ConnectionString, registry.Fleet, FleetSecret.Derive(registry.Fleet, PostgresFleetRegistryTests.Secret)),
            new FleetInstanceOptions
            {
                PrivateKey = WgPrivateKey.Parse(key.ExportBase64()), Name = "m" + Guid.NewGuid().ToString("N")[..6], InstanceId = id,
                ListenPort = 0, BindAddress = IPAddress.Loopback, Egress = EgressMode.None, MeshListenPort = 0, ReportInterval = TimeSpan.FromMilliseconds(300),
            });
        using var a = Start("a-" + Guid.NewGuid().ToString("N")[..6]);
        var b = Start("b-" + Guid.NewGuid().ToString("N")[..6]);
        try
        {
            var rows = registry.GetInstances().ToDictionary(i => i.Id);
            Assert.Equal(a.Mesh!.NodeKey, rows[a.InstanceId].NodeKey);
            Assert.Equal($"127.0.0.1:{a.Mesh.ListenPort}", rows[a.InstanceId].MeshEndpoint);
            Assert.NotEqual(key.PublicKey, a.Mesh.NodeKey);   // a node key of its own, not the fleet's
            await Eventually(() => a.Mesh.Peers.Any(p => p.NodeKey == b.Mesh!.NodeKey && p.Endpoint.Port == b.Mesh.ListenPort), "A to have B as mesh peer");
            await Eventually(() => b.Mesh!.Peers.Any(p => p.NodeKey == a.Mesh.NodeKey), "B to have A as mesh peer");

            // The live state puts Y's session on B: A's mesh peer B then carries Y's address.
            registry.ReportInstance(new InstanceReport(b.InstanceId, null, 1, 0, 0, [new PeerLive(y.PublicKey, "127.0.0.1:9", DateTimeOffset.UtcNow, 1, 1)],
                b.Mesh!.NodeKey, $"127.0.0.1:{b.Mesh.ListenPort}"));
            await Eventually(() => a.Mesh.Peers.Any(p => p.NodeKey == b.Mesh.NodeKey && p.AllowedIPs.SequenceEqual(y.AllowedIPs)), "Y's address on A's mesh peer B");
        }
        finally { b.Dispose(); }
        await Eventually(() => a.Mesh.Peers.Count == 0, "A to drop the stopped B");
        key.Dispose();
    }

    [PostgresFact]
    public void A_mesh_needs_an_endpoint_others_can_reach_and_listens_on_the_advertised_port_by_default()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        FleetInstance Start(int? port, string? endpoint, IPAddress? bind) => FleetInstance.Start(registry, new FleetInstanceOptions
        {
            PrivateKey = WgPrivateKey.Parse(key.ExportBase64()), Name = "m" + Guid.NewGuid().ToString("N")[..6], ListenPort = 0,
            BindAddress = bind, Egress = EgressMode.None, MeshListenPort = port, MeshEndpoint = endpoint,
        });
        Assert.Equal("MeshEndpointRequired", Assert.Throws<WgException>(() => Start(0, null, null)).ErrorId);
        Assert.Equal("InvalidMeshEndpoint", Assert.Throws<WgException>(() => Start(null, "mesh.example:1", IPAddress.Loopback)).ErrorId);
        int free;
        using (var probe = new System.Net.Sockets.UdpClient(new IPEndPoint(IPAddress.Loopback, 0))) free = ((IPEndPoint)probe.Client.LocalEndPoint!).Port;
        using var instance = Start(null, $"127.0.0.1:{free}", IPAddress.Loopback);
        Assert.Equal(free, instance.Mesh!.ListenPort);
        Assert.Equal($"127.0.0.1:{free}", registry.GetInstances().Single(i => i.Id == instance.InstanceId).MeshEndpoint);
        key.Dispose();
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail($"Not within 20 s: {what}");
            await Task.Delay(20);
        }
    }
}
