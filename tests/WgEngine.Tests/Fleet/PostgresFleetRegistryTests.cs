using System.Net;
using Npgsql;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;
using WgFleet;
using WgFleet.Postgres;

namespace WgEngine.Tests.Fleet;

/// <summary>The registry against a real PostgreSQL (a private cluster per test class; a fleet per test).</summary>
public sealed class PostgresFleetRegistryTests : IClassFixture<PostgresClusterFixture>
{
    internal const string Secret = "correct horse battery staple";
    private readonly PostgresClusterFixture _pg;

    public PostgresFleetRegistryTests(PostgresClusterFixture pg) => _pg = pg;

    private static string NewFleetName() => "f" + Guid.NewGuid().ToString("N")[..10];

    internal static PostgresFleetRegistry NewFleet(string connectionString, out WgPrivateKey key, string? name = null, string address = "10.8.0.1/24")
    {
        key = WgPrivateKey.Generate();
        name ??= NewFleetName();
        var registry = PostgresFleetRegistry.Open(connectionString, name, FleetSecret.Derive(name, Secret));
        registry.CreateFleet(new FleetDefinition(key.PublicKey, 51820, [IpPrefix.Parse(address)]));
        return registry;
    }

    private static WgKey NewPeerKey() { using var k = WgPrivateKey.Generate(); return k.PublicKey; }

    [PostgresFact]
    public void The_schema_is_created_once_and_recorded_in_schema_version()
    {
        using (var a = NewFleet(_pg.Cluster.ConnectionString, out var k1)) k1.Dispose();
        using (var b = NewFleet(_pg.Cluster.ConnectionString, out var k2)) k2.Dispose();   // opening again migrates nothing
        using var c = new NpgsqlConnection(_pg.Cluster.ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand("SELECT array_agg(version ORDER BY version) FROM schema_version", c);
        Assert.Equal(Enumerable.Range(1, Schema.Latest).ToArray(), (int[])cmd.ExecuteScalar()!);
    }

    [PostgresFact]
    public void A_fleet_is_found_with_its_secret_and_refused_with_another_one()
    {
        using var registry = NewFleet(_pg.Cluster.ConnectionString, out var key);
        var fleet = registry.GetFleet();
        Assert.Equal(key.PublicKey, fleet.PublicKey);
        Assert.Equal([IpPrefix.Parse("10.8.0.1/24")], fleet.Addresses);
        var again = Assert.Throws<WgException>(() => registry.CreateFleet(new FleetDefinition(key.PublicKey, 1, [IpPrefix.Parse("10.9.0.1/24")])));
        Assert.Equal("FleetExists", again.ErrorId);
        using var wrong = PostgresFleetRegistry.Open(_pg.Cluster.ConnectionString, registry.Fleet, FleetSecret.Derive(registry.Fleet, "another secret of some length"));
        Assert.Equal("FleetSecretMismatch", Assert.Throws<WgException>(() => wrong.GetFleet()).ErrorId);
        using var missing = PostgresFleetRegistry.Open(_pg.Cluster.ConnectionString, "nosuchfleet", FleetSecret.Derive("nosuchfleet", Secret));
        Assert.Equal("FleetNotFound", Assert.Throws<WgException>(() => missing.GetFleet()).ErrorId);
        key.Dispose();
    }

    [PostgresFact]
    public void Peers_get_the_next_free_pool_address_and_an_overlap_is_refused_with_nothing_changed()
    {
        using var registry = NewFleet(_pg.Cluster.ConnectionString, out var key);
        var a = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "a" });
        var b = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "b" });
        Assert.Equal([IpPrefix.Parse("10.8.0.2/32")], a.AllowedIPs);   // .1 is the gateway's own
        Assert.Equal([IpPrefix.Parse("10.8.0.3/32")], b.AllowedIPs);
        long version = registry.GetVersion();
        var c = NewPeerKey();
        var overlap = Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = c, AllowedIPs = [IpPrefix.Parse("10.8.0.0/30")] }));
        Assert.Equal("AllowedIPsOverlap", overlap.ErrorId);
        Assert.Equal("AllowedIPsOverlap", Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = c, AllowedIPs = [IpPrefix.Parse("10.8.0.1/32")] })).ErrorId);
        Assert.Equal("AllowedIPsOverlap", Assert.Throws<WgException>(() => registry.UpdatePeer(b.PublicKey, new PeerUpdate { AllowedIPs = [IpPrefix.Parse("10.8.0.2/32")] })).ErrorId);
        Assert.Equal(version, registry.GetVersion());
        Assert.DoesNotContain(registry.GetChanges(0).Changed, p => p.PublicKey == c);
        Assert.Equal([IpPrefix.Parse("10.8.0.3/32")], registry.GetChanges(0).Changed.Single(p => p.PublicKey == b.PublicKey).AllowedIPs);
        Assert.True(registry.RemovePeer(a.PublicKey));
        Assert.False(registry.RemovePeer(a.PublicKey));
        Assert.Equal([IpPrefix.Parse("10.8.0.4/32")], registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() }).AllowedIPs);
        Assert.Equal("PeerIsGateway", Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = key.PublicKey })).ErrorId);
        key.Dispose();
    }

    [PostgresFact]
    public void The_pool_runs_out_with_AddressPoolExhausted()
    {
        using var registry = NewFleet(_pg.Cluster.ConnectionString, out var key, address: "10.9.0.1/30");
        var only = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() });
        Assert.Equal([IpPrefix.Parse("10.9.0.2/32")], only.AllowedIPs);   // .1 is the gateway's, .3 the broadcast address
        long version = registry.GetVersion();
        Assert.Equal("AddressPoolExhausted", Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() })).ErrorId);
        Assert.Equal(version, registry.GetVersion());
        // A removed peer's address is free again: found in the gaps once the end of the pool is reached.
        registry.RemovePeer(only.PublicKey);
        Assert.Equal([IpPrefix.Parse("10.9.0.2/32")], registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() }).AllowedIPs);
        key.Dispose();
    }

    [PostgresFact]
    public void Changes_since_a_version_hold_the_changed_and_the_removed_peers()
    {
        using var registry = NewFleet(_pg.Cluster.ConnectionString, out var key);
        var a = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "a" });
        var b = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "b", Tags = ["staff"], PersistentKeepalive = 25 });
        long v = registry.GetVersion();
        registry.UpdatePeer(b.PublicKey, new PeerUpdate { Name = "b2" });
        Assert.True(registry.SetEnabled(b.PublicKey, false));
        Assert.False(registry.SetEnabled(b.PublicKey, false));
        registry.RemovePeer(a.PublicKey);
        var changes = registry.GetChanges(v);
        Assert.Equal(v + 3, changes.Version);
        var changed = Assert.Single(changes.Changed);
        Assert.Equal(("b2", false, 25, "staff"), (changed.Name, changed.Enabled, changed.PersistentKeepalive, changed.Tags.Single()));
        Assert.Equal([a.PublicKey], changes.Removed);
        Assert.Empty(registry.GetChanges(changes.Version).Changed);
        key.Dispose();
    }

    [PostgresFact]
    public void A_preshared_key_is_stored_encrypted_and_read_back_with_the_fleet_secret()
    {
        using var registry = NewFleet(_pg.Cluster.ConnectionString, out var key);
        var psk = new WgKey(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var peer = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), PresharedKey = psk });
        Assert.Equal(psk, peer.PresharedKey);
        using var c = new NpgsqlConnection(_pg.Cluster.ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand("SELECT psk_sealed FROM peers WHERE fleet = $1", c);
        cmd.Parameters.AddWithValue(registry.Fleet);
        var stored = (byte[])cmd.ExecuteScalar()!;
        Assert.Equal(-1, stored.AsSpan().IndexOf(psk.ToArray()));
        Assert.Equal(psk, registry.UpdatePeer(peer.PublicKey, new PeerUpdate { Name = "kept" }).PresharedKey);
        Assert.Null(registry.UpdatePeer(peer.PublicKey, new PeerUpdate { ClearPresharedKey = true }).PresharedKey);
        key.Dispose();
    }

    [PostgresTheory]
    [InlineData(4)]   // the default: optimistic first, under the ranges lock after four lost races
    [InlineData(0)]   // every allocation under the ranges lock
    public async Task Two_registries_allocating_at_once_never_give_one_address_twice(int optimistic)
    {
        using var first = NewFleet(_pg.Cluster.ConnectionString, out var key, address: "10.20.0.1/16");
        using var second = PostgresFleetRegistry.Open(_pg.Cluster.ConnectionString, first.Fleet, FleetSecret.Derive(first.Fleet, Secret));
        first.OptimisticAllocations = second.OptimisticAllocations = optimistic;
        const int PerRegistry = 60;
        var tasks = new[] { first, second }.SelectMany(r => Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            var got = new List<FleetPeer>();
            for (int i = 0; i < PerRegistry / 4; i++) got.Add(r.AddPeer(new PeerSpec { PublicKey = NewPeerKey() }));
            return got;
        }))).ToArray();
        var all = (await Task.WhenAll(tasks)).SelectMany(x => x).ToList();
        Assert.Equal(2 * PerRegistry, all.Count);
        Assert.Equal(all.Count, all.Select(p => p.AllowedIPs.Single()).Distinct().Count());
        Assert.Equal(all.Count, first.GetChanges(0).Changed.Count);
        Assert.Equal(all.Count, first.GetVersion());
        key.Dispose();
    }

    [PostgresFact]
    public void Live_state_sums_each_instances_latest_counters_and_names_the_instance_with_the_latest_handshake()
    {
        using var registry = NewFleet(_pg.Cluster.ConnectionString, out var key);
        var peer = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() }).PublicKey;
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-5);
        registry.ReportInstance(new InstanceReport("a", "192.0.2.1:51820", 1, 0, 0, [new PeerLive(peer, "198.51.100.7:4000", t0, 100, 200)]));
        registry.ReportInstance(new InstanceReport("a", "192.0.2.1:51820", 1, 0, 0, [new PeerLive(peer, "198.51.100.7:4000", t0.AddMinutes(1), 150, 260)]));
        registry.ReportInstance(new InstanceReport("b", "192.0.2.2:51820", 1, 0, 0, [new PeerLive(peer, "198.51.100.7:4001", t0.AddMinutes(2), 10, 20)]));
        var live = registry.GetLiveState()[peer];
        Assert.Equal("b", live.Instance);
        Assert.Equal("198.51.100.7:4001", live.Endpoint);
        Assert.Equal(t0.AddMinutes(2).ToUnixTimeMilliseconds(), live.LatestHandshake!.Value.ToUnixTimeMilliseconds());
        Assert.Equal((160L, 280L), (live.ReceivedBytes, live.SentBytes));   // 150 + 10, 260 + 20: a's first report is superseded
        Assert.Equal(["a", "b"], registry.GetInstances().Select(i => i.Id));
        key.Dispose();
    }

    [PostgresFact]
    public async Task A_change_is_notified_to_listeners_once_committed()
    {
        using var registry = NewFleet(_pg.Cluster.ConnectionString, out var key);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var heard = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listening = registry.ListenAsync(v => heard.TrySetResult(v), cts.Token);
        // LISTEN is in place once a NOTIFY sent after it arrives: keep changing until one is heard (bounded).
        for (int i = 0; i < 50 && !heard.Task.IsCompleted; i++)
        {
            registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() });
            await Task.WhenAny(heard.Task, Task.Delay(200, cts.Token));
        }
        long v = await heard.Task.WaitAsync(cts.Token);
        Assert.InRange(v, 1, registry.GetVersion());
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => listening);
        key.Dispose();
    }

    [PostgresFact]
    public void Writes_fail_with_RegistryUnavailable_while_the_database_is_down_and_work_again_after()
    {
        using var cluster = new PostgresCluster();
        using var registry = NewFleet(cluster.ConnectionString, out var key);
        registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() });
        cluster.Stop();
        try
        {
            var e = Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() }));
            Assert.Equal("RegistryUnavailable", e.ErrorId);
            Assert.DoesNotContain("Password", e.Message, StringComparison.OrdinalIgnoreCase);
            Assert.Equal("RegistryUnavailable", Assert.Throws<WgException>(() => registry.GetVersion()).ErrorId);
        }
        finally { cluster.Start(); }
        Assert.Equal(1, registry.GetVersion());
        registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() });
        Assert.Equal(2, registry.GetChanges(0).Changed.Count);
        key.Dispose();
    }

    [Fact]
    public void A_malformed_connection_string_is_InvalidRegistry_without_quoting_it()
    {
        var e = Assert.Throws<WgException>(() => PostgresFleetRegistry.Open("Host=x;Password=hunter2;Bogus Key=1", "f", FleetSecret.Derive("f", Secret)));
        Assert.Equal("InvalidRegistry", e.ErrorId);
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
        Assert.Equal("InvalidFleetSecret", Assert.Throws<WgException>(() => FleetSecret.Derive("f", "short")).ErrorId);
    }
}

/// <summary>One private PostgreSQL cluster shared by a test class.</summary>
public sealed class PostgresClusterFixture : IDisposable
{
    private PostgresCluster? _cluster;
    public PostgresCluster Cluster => _cluster ??= new PostgresCluster();
    public void Dispose() => _cluster?.Dispose();
}
