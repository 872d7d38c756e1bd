using Npgsql;
using WgEngine.Config;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Policy;
using WgFleet;
using WgFleet.Postgres;

namespace WgEngine.Tests.Fleet;

/// <summary>Traffic policy in the registry (bandwidth limits per peer, client isolation, tag rules), against a real
/// PostgreSQL: stored, checked like a single server checks them, versioned, and applied by every instance.</summary>
public sealed class FleetPolicyTests : IClassFixture<PostgresClusterFixture>
{
    private readonly PostgresClusterFixture _pg;

    public FleetPolicyTests(PostgresClusterFixture pg) => _pg = pg;

    // The instance tests' helpers: one definition of how a test instance starts and how a test waits.
    private static WgKey NewPeerKey() => FleetInstanceTests.NewPeerKey();
    private PostgresFleetRegistry OpenAgain(string fleet) => FleetInstanceTests.OpenAgain(_pg.Cluster.ConnectionString, fleet);
    private static FleetInstance StartInstance(PostgresFleetRegistry registry, WgPrivateKey key) => FleetInstanceTests.StartInstance(registry, key);
    private static Task Eventually(Func<bool> condition, string what) => FleetInstanceTests.Eventually(condition, what);

    [PostgresFact]
    public void Bandwidth_limits_are_stored_changed_and_removed_and_a_bad_one_changes_nothing()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        key.Dispose();
        var k = NewPeerKey();
        var added = registry.AddPeer(new PeerSpec { PublicKey = k, UploadLimit = new RateLimit(1_000_000, 65536), DownloadLimit = new RateLimit(5_000_000) });
        Assert.Equal((new RateLimit(1_000_000, 65536), new RateLimit(5_000_000)), (added.UploadLimit, added.DownloadLimit));
        // Only the upload changes; a rate of 0 then removes it; the download stays.
        var changed = registry.UpdatePeer(k, new PeerUpdate { UploadLimit = new RateLimit(2_000_000) });
        Assert.Equal((new RateLimit(2_000_000), new RateLimit(5_000_000)), (changed.UploadLimit, changed.DownloadLimit));
        var removed = registry.UpdatePeer(k, new PeerUpdate { UploadLimit = new RateLimit(0) });
        Assert.Equal((null, new RateLimit(5_000_000)), (removed.UploadLimit, removed.DownloadLimit));
        // A name change keeps the limits.
        Assert.Equal(new RateLimit(5_000_000), registry.UpdatePeer(k, new PeerUpdate { Name = "kept" }).DownloadLimit);

        long version = registry.GetVersion();
        var bad = Assert.Throws<WgException>(() => registry.UpdatePeer(k, new PeerUpdate { DownloadLimit = new RateLimit(10) }));
        Assert.Equal("InvalidRateLimit", bad.ErrorId);
        var badAdd = Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), UploadLimit = new RateLimit(RateLimit.MaxBitsPerSecond + 1) }));
        Assert.Equal("InvalidRateLimit", badAdd.ErrorId);
        Assert.Equal("InvalidTag", Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Tags = ["no spaces allowed"] })).ErrorId);
        Assert.Equal(version, registry.GetVersion());
        Assert.Single(registry.GetChanges(0).Changed);
    }

    [PostgresFact]
    public void Isolation_and_tag_rules_are_versioned_and_read_only_by_a_reader_that_has_not_seen_them()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        key.Dispose();
        var initial = registry.GetChanges(0).Policy!;
        Assert.False(initial.PeerIsolation);
        Assert.Empty(initial.TagRules);
        long before = registry.GetVersion();

        long v1 = registry.SetPeerIsolation(true);
        long v2 = registry.SetTagRules("Admins", ["allow 10.8.0.0/24", "deny any"]);
        Assert.Equal((before + 1, before + 2), (v1, v2));
        var seen = registry.GetChanges(before);
        Assert.NotNull(seen.Policy);
        Assert.True(seen.Policy!.PeerIsolation);
        // Stored as the rules' canonical text, looked up without regard to case.
        Assert.Equal(AclRule.Parse("allow 10.8.0.0/24").Concat(AclRule.Parse("deny any")).Select(r => r.ToString()), seen.Policy.TagRules["admins"]);
        // A reader already at the latest version gets no policy; a peer change alone brings none either.
        Assert.Null(registry.GetChanges(v2).Policy);
        registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() });
        Assert.Null(registry.GetChanges(v2).Policy);

        // Bad rules and tags change nothing.
        long version = registry.GetVersion();
        Assert.Equal("InvalidAclRule", Assert.Throws<WgException>(() => registry.SetTagRules("admins", ["allow nowhere at all"])).ErrorId);
        Assert.Equal("InvalidTag", Assert.Throws<WgException>(() => registry.SetTagRules("two words", ["deny any"])).ErrorId);
        Assert.Equal(version, registry.GetVersion());

        // Empty rules remove the tag's entry, in any case.
        registry.SetTagRules("ADMINS", []);
        Assert.Empty(registry.GetPolicy().TagRules);
        Assert.True(registry.GetPolicy().PeerIsolation);
    }

    [PostgresFact]
    public async Task Every_instance_applies_limits_isolation_and_tag_rules_written_anywhere()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        var k = NewPeerKey();
        registry.AddPeer(new PeerSpec { PublicKey = k, Tags = ["ops"], UploadLimit = new RateLimit(1_000_000) });
        registry.SetTagRules("ops", ["allow 10.8.0.0/24 tcp 22"]);
        using var secondKey = WgPrivateKey.Parse(key.ExportBase64());
        using var registryB = OpenAgain(registry.Fleet);
        using var a = StartInstance(registry, key);
        using var b = StartInstance(registryB, secondKey);
        foreach (var i in new[] { a, b })
        {
            // Loaded at start: the peer's limit and the tag's rules.
            Assert.Equal(new RateLimit(1_000_000), i.Server.GetPeerInfo(k)!.UploadLimit);
            Assert.Equal(AclRule.Parse("allow 10.8.0.0/24 tcp 22"), i.Server.TagRules["ops"]);
            Assert.False(i.Server.PeerIsolation);
        }

        // Changed through a management session (no instance): each instance follows.
        using var manager = new FleetGateway(OpenAgain(registry.Fleet), null);
        manager.UpdatePeer(k, new PeerUpdate { UploadLimit = new RateLimit(0), DownloadLimit = new RateLimit(8_000_000, 1 << 20) });
        manager.SetPeerIsolation(true);
        manager.SetTagRules("ops", []);
        manager.SetTagRules("web", AclRule.Parse("allow 10.8.0.0/24 tcp 443"));
        long target = registry.GetVersion();
        foreach (var i in new[] { a, b })
        {
            await Eventually(() => i.AppliedVersion >= target, "the instance applied every change");
            var p = i.Server.GetPeerInfo(k)!;
            Assert.Equal((null, new RateLimit(8_000_000, 1 << 20)), (p.UploadLimit, p.DownloadLimit));
            Assert.True(i.Server.PeerIsolation);
            Assert.False(i.Server.TagRules.ContainsKey("ops"));
            Assert.Equal(AclRule.Parse("allow 10.8.0.0/24 tcp 443"), i.Server.TagRules["web"]);
            Assert.Equal(0, i.RejectedPolicies);
        }
        // What the management session shows is the registry's.
        Assert.True(manager.PeerIsolation);
        Assert.Equal(["web"], manager.TagRules.Keys);
        Assert.Equal(new RateLimit(8_000_000, 1 << 20), manager.GetPeerInfo(k)!.DownloadLimit);
    }

    [PostgresFact]
    public void A_fleet_quota_counts_every_instance_once_and_Enable_starts_it_afresh_everywhere()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        const long MB = 1_000_000;
        using var manager = new FleetGateway(OpenAgain(registry.Fleet), null);
        var k = NewPeerKey();
        var added = manager.AddPeer(new PeerSpec { PublicKey = k, Quota = new DataQuota(10 * MB, QuotaPeriod.Month) });
        Assert.Equal(new DataQuota(10 * MB, QuotaPeriod.Month), added.Quota);
        using var a = StartInstance(registry, key);
        Assert.Equal(10 * MB, a.Server.GetPeerInfo(k)!.Quota!.Value.Bytes);

        // Another instance (its reports written here as it would write them) used 4 MB of this period: this one allows 6.
        var now = DateTimeOffset.UtcNow;
        var period = new DataQuota(1, QuotaPeriod.Month).PeriodStart(now);
        void OtherUsed(long used, DateTimeOffset start, long epoch = 0) =>
            registry.ReportInstance(new InstanceReport("other", null, 1, used, 0, [new PeerLive(k, "192.0.2.9:4000", now, used, 0, start, used, epoch)]));
        OtherUsed(4 * MB, period);
        a.Report();
        Assert.Equal(6 * MB, a.Server.GetPeerInfo(k)!.Quota!.Value.Bytes);
        var shown = manager.GetPeerInfo(k)!;
        Assert.Equal((4 * MB, true, (string?)null, (DateTimeOffset?)period), (shown.QuotaUsedBytes, shown.Enabled, shown.DisabledReason, shown.QuotaPeriodStart));

        // Last period's count does not count; all of this period's used up: this instance allows 1 byte, the fleet shows it used up.
        OtherUsed(9 * MB, period.AddMonths(-1));
        a.Report();
        Assert.Equal(10 * MB, a.Server.GetPeerInfo(k)!.Quota!.Value.Bytes);
        OtherUsed(10 * MB, period);
        a.Report();
        Assert.Equal(1, a.Server.GetPeerInfo(k)!.Quota!.Value.Bytes);
        shown = manager.GetPeerInfo(k)!;
        Assert.Equal((10 * MB, false, "QuotaExceeded"), (shown.QuotaUsedBytes, shown.Enabled, shown.DisabledReason));

        // Enable-WgPeer: a new quota epoch; the old epoch's counts are ignored, this instance allows the whole quota again.
        Assert.True(manager.EnablePeer(k));
        Assert.Equal(1, Assert.Single(registry.GetChanges(0).Changed).QuotaEpoch);
        a.SyncOnce();
        a.Report();
        Assert.Equal(10 * MB, a.Server.GetPeerInfo(k)!.Quota!.Value.Bytes);
        shown = manager.GetPeerInfo(k)!;
        Assert.Equal((0L, true), (shown.QuotaUsedBytes, shown.Enabled));
        OtherUsed(3 * MB, period, epoch: 1);
        a.Report();
        Assert.Equal(7 * MB, a.Server.GetPeerInfo(k)!.Quota!.Value.Bytes);

        // A bad quota changes nothing; 0 bytes removes the quota everywhere.
        long version = registry.GetVersion();
        Assert.Equal("InvalidQuota", Assert.Throws<WgException>(() => manager.UpdatePeer(k, new PeerUpdate { Quota = new DataQuota(-5) })).ErrorId);
        Assert.Equal(version, registry.GetVersion());
        manager.UpdatePeer(k, new PeerUpdate { Quota = new DataQuota(0) });
        a.SyncOnce();
        Assert.Null(a.Server.GetPeerInfo(k)!.Quota);
        Assert.Null(manager.GetPeerInfo(k)!.Quota);
    }

    [PostgresFact]
    public void The_fleet_exports_as_one_wg_quick_file_with_its_policy_and_peers_and_the_key_only_from_an_instance()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key);
        string expectedKey = key.ExportBase64();
        var psk = new WgKey(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var limited = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "limited", Tags = ["ops"], PresharedKey = psk,
            UploadLimit = new RateLimit(1_000_000), Quota = new DataQuota(5_000_000, QuotaPeriod.Week), Acl = AclRule.Parse("deny 10.8.0.0/24 tcp 25") });
        var off = registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = "off", Disabled = true });
        registry.SetPeerIsolation(true);
        registry.SetTagRules("ops", ["allow any"]);
        using var manager = new FleetGateway(OpenAgain(registry.Fleet), null);

        var config = WgConfigParser.Parse(manager.ExportConfigText(WgConfigFormat.WgQuick, includePrivateKey: true, includePresharedKeys: false));
        Assert.Null(config.Interface.PrivateKey);   // a management session has no private key to give
        Assert.Equal((51820, true), (config.Interface.ListenPort, config.Interface.PeerIsolation));
        Assert.Equal([IpPrefix.Parse("10.8.0.1/24")], config.Interface.Address);
        Assert.Equal(AclRule.Parse("allow any"), config.Interface.TagRules["ops"]);
        var peers = config.Peers.ToDictionary(p => p.PublicKey);
        var l = peers[limited.PublicKey];
        Assert.Equal(("limited", (WgKey?)null, new RateLimit(1_000_000), new DataQuota(5_000_000, QuotaPeriod.Week)), (l.Name, l.PresharedKey, l.UploadLimit, l.Quota));
        Assert.Equal(limited.AllowedIPs, l.AllowedIPs);
        Assert.Equal(["ops"], l.Tags);
        Assert.Equal(AclRule.Parse("deny 10.8.0.0/24 tcp 25"), l.Acl);
        Assert.True(peers[off.PublicKey].Disabled);
        // The preshared keys only when asked for.
        var withPsk = WgConfigParser.Parse(manager.ExportConfigText(WgConfigFormat.WgQuick, includePrivateKey: false, includePresharedKeys: true));
        Assert.Equal(psk, withPsk.Peers.Single(p => p.PublicKey == limited.PublicKey).PresharedKey);

        // From a session that runs an instance: the fleet's key too (the instance was given it).
        using var instance = StartInstance(OpenAgain(registry.Fleet), key);
        using var local = new FleetGateway(OpenAgain(registry.Fleet), instance);
        var full = WgConfigParser.Parse(local.ExportConfigText(WgConfigFormat.WgQuick, includePrivateKey: true));
        Assert.Equal(expectedKey, full.Interface.PrivateKey);
        Assert.DoesNotContain(expectedKey, local.ExportConfigText(WgConfigFormat.WgQuick, includePrivateKey: false));
        Assert.Equal("NotSupportedInFleet", Assert.Throws<WgException>(() => manager.SetListenPort(51821)).ErrorId);
    }

    [PostgresFact]
    public void A_registry_at_schema_version_2_migrates_and_keeps_its_peers()
    {
        // A database as the previous release left it: steps 1 and 2 only, a fleet and a peer.
        string db = "m" + Guid.NewGuid().ToString("N")[..10];
        using (var admin = new NpgsqlConnection(_pg.Cluster.ConnectionString))
        {
            admin.Open();
            using var create = new NpgsqlCommand($"CREATE DATABASE {db}", admin);
            create.ExecuteNonQuery();
        }
        var cs = new NpgsqlConnectionStringBuilder(_pg.Cluster.ConnectionString) { Database = db }.ConnectionString;
        string fleet = "old" + Guid.NewGuid().ToString("N")[..6];
        var peer = NewPeerKey();
        using (var key = WgPrivateKey.Generate())
        using (var c = new NpgsqlConnection(cs))
        {
            c.Open();
            foreach (var sql in new[] { "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", Schema.Steps[0], Schema.Steps[1],
                         "INSERT INTO schema_version (version) VALUES (1), (2)" })
            {
#pragma warning disable CA2100 // the schema's own constants
                using var cmd = new NpgsqlCommand(sql, c);
#pragma warning restore CA2100
                cmd.ExecuteNonQuery();
            }
            using var secret = FleetSecret.Derive(fleet, PostgresFleetRegistryTests.Secret);
            using (var ins = new NpgsqlCommand("INSERT INTO fleets (name, public_key, listen_port, addresses, secret_check, version) VALUES ($1, $2, 51820, '{10.8.0.1/24}', $3, 1)", c))
            {
                ins.Parameters.AddWithValue(fleet);
                ins.Parameters.AddWithValue(key.PublicKey.ToBase64());
                ins.Parameters.AddWithValue(secret.CheckValue);
                ins.ExecuteNonQuery();
            }
            using (var ins = new NpgsqlCommand("INSERT INTO peers (fleet, public_key, name, allowed_ips, row_version) VALUES ($1, $2, 'kept', '{10.8.0.2/32}', 1)", c))
            {
                ins.Parameters.AddWithValue(fleet);
                ins.Parameters.AddWithValue(peer.ToBase64());
                ins.ExecuteNonQuery();
            }
        }
        try
        {
            using var registry = PostgresFleetRegistry.Open(cs, fleet, FleetSecret.Derive(fleet, PostgresFleetRegistryTests.Secret));
            var changes = registry.GetChanges(0);
            var kept = Assert.Single(changes.Changed);
            Assert.Equal(("kept", peer, (RateLimit?)null), (kept.Name, kept.PublicKey, kept.UploadLimit));
            Assert.False(changes.Policy!.PeerIsolation);
            // The new columns work on the migrated rows.
            Assert.Equal(new RateLimit(64_000), registry.UpdatePeer(peer, new PeerUpdate { UploadLimit = new RateLimit(64_000) }).UploadLimit);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            using var admin = new NpgsqlConnection(_pg.Cluster.ConnectionString);
            admin.Open();
            using var drop = new NpgsqlCommand($"DROP DATABASE {db} WITH (FORCE)", admin);
            drop.ExecuteNonQuery();
        }
    }
}
