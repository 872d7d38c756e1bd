using Microsoft.Extensions.Time.Testing;
using Npgsql;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;
using WgFleet;
using WgFleet.Postgres;

namespace WgEngine.Tests.Fleet;

/// <summary>Instances against a real PostgreSQL: load, notifications, the poll that repairs a missed one, an outage.</summary>
public sealed class FleetInstanceTests : IClassFixture<PostgresClusterFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly PostgresClusterFixture _pg;

    public FleetInstanceTests(PostgresClusterFixture pg) => _pg = pg;

    internal static WgKey NewPeerKey() { using var k = WgPrivateKey.Generate(); return k.PublicKey; }

    internal static PostgresFleetRegistry OpenAgain(string cs, string fleet) =>
        PostgresFleetRegistry.Open(cs, fleet, FleetSecret.Derive(fleet, PostgresFleetRegistryTests.Secret));

    internal static FleetInstance StartInstance(PostgresFleetRegistry registry, WgPrivateKey key, TimeSpan? poll = null, TimeProvider? time = null) =>
        FleetInstance.Start(registry, new FleetInstanceOptions
        {
            PrivateKey = key, Name = "fl" + Guid.NewGuid().ToString("N")[..6], ListenPort = 0, Egress = EgressMode.None,
            PollInterval = poll ?? TimeSpan.FromSeconds(2), ReportInterval = TimeSpan.FromSeconds(1), TimeProvider = time ?? TimeProvider.System,
        });

    internal static async Task Eventually(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail($"Not within {Patience.TotalSeconds} s: {what}");
            await Task.Delay(20);
        }
    }

    [PostgresFact]
    public void An_instance_serves_every_peer_of_the_fleet_and_refuses_another_key()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        var psk = new WgKey(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var a = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "a", PresharedKey = psk, PersistentKeepalive = 25 });
        var b = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "b", Disabled = true });
        using (var wrong = WgPrivateKey.Generate())
            Assert.Equal("FleetKeyMismatch", Assert.Throws<WgException>(() => StartInstance(registry, wrong)).ErrorId);
        using var instance = StartInstance(registry, key);
        Assert.Equal(key.PublicKey, instance.Server.PublicKey);
        Assert.Equal(registry.GetVersion(), instance.AppliedVersion);
        var peers = instance.Server.GetPeers().ToDictionary(p => p.PublicKey);
        Assert.Equal(2, peers.Count);
        Assert.Equal(("a", true, true, 25), (peers[a.PublicKey].Name, peers[a.PublicKey].Enabled, peers[a.PublicKey].HasPresharedKey, peers[a.PublicKey].PersistentKeepalive));
        Assert.False(peers[b.PublicKey].Enabled);
        Assert.Equal(b.AllowedIPs, peers[b.PublicKey].AllowedIPs);
        Assert.Contains(registry.GetInstances(), i => i.Id == instance.InstanceId && !i.Stopped);
        key.Dispose();
    }

    [PostgresFact]
    public async Task A_change_made_elsewhere_arrives_by_notification_without_waiting_for_the_poll()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        var moved = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "moved" });
        // The poll is an hour away: only the notification can bring the changes in.
        using var instance = StartInstance(registry, key, poll: TimeSpan.FromHours(1));
        using var elsewhere = OpenAgain(_pg.Cluster.ConnectionString, registry.Fleet);
        var added = NewPeerKey();
        // Until LISTEN is in place a change may go unheard: keep writing (bounded) until one arrives.
        for (int i = 0; i < 100 && instance.AppliedVersion < elsewhere.GetVersion(); i++)
        {
            elsewhere.UpdatePeer(moved.PublicKey, new PeerUpdate { Name = $"moved{i}" });
            await Task.Delay(100);
        }
        // A peer's address handed over to another peer in one go: the instance applies both without an overlap.
        elsewhere.UpdatePeer(moved.PublicKey, new PeerUpdate { AllowedIPs = [IpPrefix.Parse("10.8.0.200/32")] });
        elsewhere.AddPeer(new PeerSpec { PublicKey = added, AllowedIPs = moved.AllowedIPs, Name = "added" });
        elsewhere.UpdatePeer(moved.PublicKey, new PeerUpdate { AllowedIPs = [IpPrefix.Parse("10.8.0.201/32")] });
        Assert.True(elsewhere.RemovePeer(moved.PublicKey));
        long target = elsewhere.GetVersion();
        await Eventually(() => instance.AppliedVersion >= target, "the instance applied every change");
        Assert.Null(instance.Server.GetPeerInfo(moved.PublicKey));
        Assert.Equal(moved.AllowedIPs, instance.Server.GetPeerInfo(added)!.AllowedIPs);
        Assert.Equal(0, instance.RejectedPeers);
        key.Dispose();
    }

    [PostgresFact]
    public async Task A_burst_of_changes_from_several_writers_is_applied_by_the_notification_alone()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        var peers = Enumerable.Range(0, 8).Select(i => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = $"p{i}" }).PublicKey).ToArray();
        // The poll is an hour away: the notification (through the debounce) is what applies them.
        using var instance = StartInstance(registry, key, poll: TimeSpan.FromHours(1));
        var writers = Enumerable.Range(0, 4).Select(_ => OpenAgain(_pg.Cluster.ConnectionString, registry.Fleet)).ToArray();
        try
        {
            // A change written before LISTEN is in place goes unheard: write until one arrives (bounded).
            for (int i = 0; ; i++)
            {
                long v = writers[0].UpdatePeer(peers[0], new PeerUpdate { Name = $"warm{i}" }).RowVersion;
                var until = DateTime.UtcNow + TimeSpan.FromMilliseconds(500);
                while (instance.AppliedVersion < v && DateTime.UtcNow < until) await Task.Delay(10);
                if (instance.AppliedVersion >= v) break;
                Assert.True(i < 40, "no notification reached the instance in 20 s");
            }
            // Four writers, 25 renames each, as fast as they go.
            var burst = writers.Select((w, n) => Task.Run(() =>
            {
                for (int i = 0; i < 25; i++) w.UpdatePeer(peers[(n * 25 + i) % peers.Length], new PeerUpdate { Name = $"w{n}-{i}" });
            })).ToArray();
            await Task.WhenAll(burst).WaitAsync(Patience);
            // With the poll an hour away only notifications (debounced) can bring the whole burst in. How soon is a
            // benchmark figure (bench/fleet/fleet-scale.ps1: propagation p50/p99 under 1,000 changes/s), not asserted here.
            long target = registry.GetVersion();
            await Eventually(() => instance.AppliedVersion >= target, "the burst was applied");
            var names = instance.Server.GetPeers().ToDictionary(p => p.PublicKey, p => p.Name);
            foreach (var (k, p) in registry.GetChanges(0).Changed.Select(p => (p.PublicKey, p))) Assert.Equal(p.Name, names[k]);
        }
        finally { foreach (var w in writers) w.Dispose(); }
        key.Dispose();
    }

    [PostgresFact]
    public async Task A_change_without_a_notification_is_found_by_the_periodic_version_check()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var instance = StartInstance(registry, key, poll: TimeSpan.FromSeconds(30), time: time);
        // A change committed without pg_notify (as if the notification were lost).
        var peer = NewPeerKey();
        using (var c = new NpgsqlConnection(_pg.Cluster.ConnectionString))
        {
            c.Open();
            using var cmd = new NpgsqlCommand("""
                WITH v AS (UPDATE fleets SET version = version + 1 WHERE name = $1 RETURNING version)
                INSERT INTO peers (fleet, public_key, name, allowed_ips, row_version) SELECT $1, $2, 'silent', '{10.8.0.77/32}', version FROM v
                """, c);
            cmd.Parameters.AddWithValue(registry.Fleet);
            cmd.Parameters.AddWithValue(peer.ToBase64());
            cmd.ExecuteNonQuery();
        }
        long target = registry.GetVersion();
        // The fake clock moves on by poll intervals until the check ran (bounded).
        for (int i = 0; i < 200 && instance.AppliedVersion < target; i++)
        {
            time.Advance(TimeSpan.FromSeconds(30));
            await Task.Delay(50);
        }
        Assert.Equal(target, instance.AppliedVersion);
        Assert.Equal("silent", instance.Server.GetPeerInfo(peer)!.Name);
        key.Dispose();
    }

    [PostgresFact]
    public async Task While_the_database_is_down_the_instance_keeps_its_peers_and_it_catches_up_after()
    {
        using var cluster = new PostgresCluster();
        using var registry = PostgresFleetRegistryTests.NewFleet(cluster.ConnectionString, out var key);
        var kept = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "kept" });
        using var instance = StartInstance(registry, key, poll: TimeSpan.FromMilliseconds(300));
        cluster.Stop();
        try
        {
            await Eventually(() => !instance.RegistryReachable, "the instance noticed the outage");
            Assert.Equal("RegistryUnavailable", Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() })).ErrorId);
            Assert.Equal("kept", instance.Server.GetPeerInfo(kept.PublicKey)!.Name);
            Assert.Equal(ServerState.Running, instance.Server.State);
        }
        finally { cluster.Start(); }
        using var other = OpenAgain(cluster.ConnectionString, registry.Fleet);
        var later = other.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "later" });
        await Eventually(() => instance.Server.GetPeerInfo(later.PublicKey) is not null, "the peer added after the outage reached the instance");
        Assert.True(instance.RegistryReachable);
        Assert.Equal(2, instance.Server.PeerCount);
        key.Dispose();
    }
}
