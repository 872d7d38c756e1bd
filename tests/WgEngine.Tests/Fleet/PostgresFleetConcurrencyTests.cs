using Npgsql;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;
using WgFleet;
using WgFleet.Postgres;

namespace WgEngine.Tests.Fleet;

/// <summary>
/// The registry's guarantees with concurrent writers, each on its own registry object (its own connection pool,
/// so its own sessions), as separate instances or management sessions would be: the database, not a lock in this
/// process, refuses overlaps and double allocations; versions never let a reader skip a change; a write is all or
/// nothing. And the migration from schema version 2 keeps what was there.
/// </summary>
// Runs apart from the other test classes (DatabaseConcurrency), so that its eight writers meet each other rather
// than the CPU of unrelated tests. (Its 60 s timeouts were the writers' deadlock storm in the exclusion constraint,
// fixed by the registry's range lock, LockRanges.)
[Collection(DatabaseConcurrency.Name)]
public sealed class PostgresFleetConcurrencyTests : IClassFixture<PostgresClusterFixture>
{
    private const int Writers = 8;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly PostgresClusterFixture _pg;

    public PostgresFleetConcurrencyTests(PostgresClusterFixture pg) => _pg = pg;

    private static WgKey NewPeerKey() { using var k = WgPrivateKey.Generate(); return k.PublicKey; }

    private PostgresFleetRegistry[] OpenWriters(string fleet) => Enumerable.Range(0, Writers)
        .Select(_ => PostgresFleetRegistry.Open(_pg.Cluster.ConnectionString, fleet, FleetSecret.Derive(fleet, PostgresFleetRegistryTests.Secret))).ToArray();

    /// <summary>Runs one body per writer on its own thread, all released at once by a barrier for each round.</summary>
    private static async Task<List<T>[]> RunTogether<T>(int rounds, Func<int, int, T> body)
    {
        using var barrier = new Barrier(Writers);
        var tasks = Enumerable.Range(0, Writers).Select(w => Task.Factory.StartNew(() =>
        {
            var results = new List<T>();
            for (int round = 0; round < rounds; round++)
            {
                if (!barrier.SignalAndWait(Patience)) throw new TimeoutException("a writer did not reach the barrier");
                try { results.Add(body(w, round)); }
                catch
                {
                    // This writer is out: the others must not wait for it at the next barrier (the test then fails
                    // with this writer's own exception, not a timeout).
                    barrier.RemoveParticipant();
                    throw;
                }
            }
            return results;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        return await Task.WhenAll(tasks).WaitAsync(Patience);
    }

    private static string? Outcome(Action write)
    {
        try { write(); return null; }
        catch (WgException e) { return e.ErrorId; }
    }

    [PostgresFact]
    public async Task Concurrent_writers_of_overlapping_AllowedIPs_one_wins_per_set_and_the_others_get_AllowedIPsOverlap()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key, address: "10.40.0.1/24");
        var writers = OpenWriters(registry.Fleet);
        try
        {
            const int Sets = 20;
            // Set s: every writer asks for a range holding 10.50.s.0, of lengths /24 to /27 (two writers per length:
            // equal ranges meet UNIQUE, nested ones the exclusion constraint). Any two of a set overlap.
            var outcomes = await RunTogether(Sets, (w, s) =>
                Outcome(() => writers[w].AddPeer(new PeerSpec { PublicKey = NewPeerKey(), AllowedIPs = [IpPrefix.Parse($"10.50.{s}.0/{24 + w % 4}")] })));
            for (int s = 0; s < Sets; s++)
            {
                var set = outcomes.Select(o => o[s]).ToList();
                Assert.Single(set, o => o is null);
                Assert.All(set.Where(o => o is not null), o => Assert.Equal("AllowedIPsOverlap", o));
            }
            var peers = registry.GetChanges(0).Changed;
            Assert.Equal(Sets, peers.Count);
            var ranges = peers.SelectMany(p => p.AllowedIPs).ToList();
            for (int i = 0; i < ranges.Count; i++)
                for (int j = i + 1; j < ranges.Count; j++)
                    Assert.False(ranges[i].Overlaps(ranges[j]), $"{ranges[i]} and {ranges[j]} both taken");
            Assert.Equal(Sets, registry.GetVersion());   // a refused write bumped nothing
            AssertAllocationsMatchPeers(registry.Fleet);
        }
        finally { foreach (var w in writers) w.Dispose(); }
        key.Dispose();
    }

    [PostgresFact]
    public async Task Concurrent_allocations_never_collide_even_with_explicit_ranges_taken_in_their_way()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key, address: "10.60.0.1/16");
        var writers = OpenWriters(registry.Fleet);
        try
        {
            const int Rounds = 25;
            // Writers 0-6 allocate; writer 7 takes explicit addresses just ahead of the pool's highest, where the
            // allocators' next candidates are, so allocations lose races to it and must retry.
            var outcomes = await RunTogether<(string? Allocated, string? Explicit)>(Rounds, (w, round) =>
            {
                if (w < Writers - 1)
                {
                    var p = writers[w].AddPeer(new PeerSpec { PublicKey = NewPeerKey() });
                    return (p.AllowedIPs.Single().ToString(), null);
                }
                var ahead = IpPrefix.Parse($"10.60.0.{2 + round * 8}/32");
                return (null, Outcome(() => writers[w].AddPeer(new PeerSpec { PublicKey = NewPeerKey(), AllowedIPs = [ahead] })));
            });
            var allocated = outcomes.Take(Writers - 1).SelectMany(o => o).Select(o => o.Allocated!).ToList();
            Assert.Equal((Writers - 1) * Rounds, allocated.Count);
            Assert.Equal(allocated.Count, allocated.Distinct().Count());
            var explicitOutcomes = outcomes[^1].Select(o => o.Explicit).ToList();
            Assert.All(explicitOutcomes, o => Assert.True(o is null or "AllowedIPsOverlap", o));
            var peers = registry.GetChanges(0).Changed;
            int expected = allocated.Count + explicitOutcomes.Count(o => o is null);
            Assert.Equal(expected, peers.Count);
            Assert.Equal(expected, peers.Select(p => p.AllowedIPs.Single()).Distinct().Count());
            Assert.DoesNotContain(peers, p => p.AllowedIPs.Single() == IpPrefix.Parse("10.60.0.1/32"));   // the gateway's
            Assert.Equal(expected, registry.GetVersion());
            AssertAllocationsMatchPeers(registry.Fleet);
        }
        finally { foreach (var w in writers) w.Dispose(); }
        key.Dispose();
    }

    [PostgresFact]
    public async Task A_reader_following_versions_during_concurrent_commits_misses_no_change()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key, address: "10.70.0.1/16");
        var initial = Enumerable.Range(0, Writers * 4).Select(i => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = $"p{i}" }).PublicKey).ToArray();
        var writers = OpenWriters(registry.Fleet);
        // The reader does what an instance does: changes since the version it holds, then holds the version returned.
        var state = registry.GetChanges(0).Changed.ToDictionary(p => p.PublicKey);
        long held = registry.GetVersion();
        var problems = new List<string>();
        int reads = 0;
        void ReadOnce()
        {
            var changes = registry.GetChanges(held);
            foreach (var p in changes.Changed)
            {
                if (p.RowVersion <= held || p.RowVersion > changes.Version) problems.Add($"row version {p.RowVersion} outside ({held}, {changes.Version}]");
                state[p.PublicKey] = p;
            }
            foreach (var k in changes.Removed) state.Remove(k);
            if (changes.Version < held) problems.Add($"version went back from {held} to {changes.Version}");
            held = changes.Version;
            reads++;
        }
        using var done = new CancellationTokenSource();
        var reader = Task.Factory.StartNew(() => { while (!done.IsCancellationRequested) ReadOnce(); }, TaskCreationOptions.LongRunning);
        try
        {
            // Each round every writer renames one of its peers, changes the AllowedIPs of another, or removes and
            // adds one: all at once, on eight sessions.
            var mine = Enumerable.Range(0, Writers).Select(w => initial.Skip(w * 4).Take(4).ToList()).ToArray();
            var versions = await RunTogether(30, (w, round) =>
            {
                var peers = mine[w];
                switch (round % 3)
                {
                    case 0: return writers[w].UpdatePeer(peers[round % peers.Count], new PeerUpdate { Name = $"w{w}r{round}" }).RowVersion;
                    case 1: return writers[w].UpdatePeer(peers[round % peers.Count], new PeerUpdate { AllowedIPs = [IpPrefix.Parse($"10.71.{w}.{round}/32")] }).RowVersion;
                    default:
                        Assert.True(writers[w].RemovePeer(peers[0]));
                        peers.RemoveAt(0);
                        var added = writers[w].AddPeer(new PeerSpec { PublicKey = NewPeerKey(), Name = $"w{w}r{round}" });
                        peers.Add(added.PublicKey);
                        return added.RowVersion;
                }
            });
            await done.CancelAsync();
            await reader.WaitAsync(Patience);
            var all = versions.SelectMany(v => v).ToList();
            Assert.Equal(all.Count, all.Distinct().Count());   // one version per change
            ReadOnce();   // the catch-up an instance does after the last notification
            Assert.Empty(problems);
            Assert.True(reads > 2, $"the reader read only {reads} times while the writers ran");
            Assert.True(held >= all.Max());
            // Had a change committed with a version the reader had already passed, it would be missing here for good.
            var truth = registry.GetChanges(0).Changed.ToDictionary(p => p.PublicKey);
            Assert.Equal(truth.Keys.Select(k => k.ToBase64()).Order().ToList(), state.Keys.Select(k => k.ToBase64()).Order().ToList());
            foreach (var (k, p) in truth) Assert.Equal((p.Name, p.RowVersion, string.Join(",", p.AllowedIPs)), (state[k].Name, state[k].RowVersion, string.Join(",", state[k].AllowedIPs)));
            AssertAllocationsMatchPeers(registry.Fleet);
        }
        finally
        {
            await done.CancelAsync();
            foreach (var w in writers) w.Dispose();
        }
        key.Dispose();
    }

    [PostgresFact]
    public async Task Racing_updates_and_removals_of_the_same_peers_leave_no_allocation_without_its_peer()
    {
        using var registry = PostgresFleetRegistryTests.NewFleet(_pg.Cluster.ConnectionString, out var key, address: "10.80.0.1/16");
        var writers = OpenWriters(registry.Fleet);
        try
        {
            const int Rounds = 15;
            var targets = Enumerable.Range(0, Rounds).Select(_ => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() }).PublicKey).ToArray();
            // Per round, one peer: writer 0 removes it while the others move its AllowedIPs (each to a range of its own).
            var outcomes = await RunTogether(Rounds, (w, round) => w == 0
                ? (writers[w].RemovePeer(targets[round]) ? "removed" : "gone")
                : Outcome(() => writers[w].UpdatePeer(targets[round], new PeerUpdate { AllowedIPs = [IpPrefix.Parse($"10.81.{round}.{w}/32")] })) ?? "moved");
            for (int round = 0; round < Rounds; round++)
            {
                Assert.Equal("removed", outcomes[0][round]);
                Assert.All(outcomes.Skip(1), o => Assert.True(o[round] is "moved" or "PeerNotFound", o[round]));
            }
            Assert.Empty(registry.GetChanges(0).Changed);
            AssertAllocationsMatchPeers(registry.Fleet);
        }
        finally { foreach (var w in writers) w.Dispose(); }
        key.Dispose();
    }

    [PostgresFact]
    public void A_database_at_schema_version_2_migrates_to_the_latest_and_keeps_its_peers()
    {
        string database = "m" + Guid.NewGuid().ToString("N")[..10];
        using (var admin = new NpgsqlConnection(_pg.Cluster.ConnectionString))
        {
            admin.Open();
            using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            create.ExecuteNonQuery();
        }
        string cs = new NpgsqlConnectionStringBuilder(_pg.Cluster.ConnectionString) { Database = database, Pooling = false }.ConnectionString;
        const string Fleet = "old";
        using var gateway = WgPrivateKey.Generate();
        WgKey a = NewPeerKey(), b = NewPeerKey();
        using (var secret = FleetSecret.Derive(Fleet, PostgresFleetRegistryTests.Secret))
        using (var c = new NpgsqlConnection(cs))
        {
            c.Open();
            Assert.Equal(0, Schema.Migrate(c, upTo: 2));
            // What version 2's code wrote: a fleet, its own address, two peers, one holding nested ranges of its own.
            using var batch = new NpgsqlBatch(c);
            object[] values = [Fleet, gateway.PublicKey.ToBase64(), secret.CheckValue, a.ToBase64(), b.ToBase64()];
            foreach (var (sql, used) in new[]
            {
                ("INSERT INTO fleets (name, public_key, listen_port, addresses, secret_check, version) VALUES ($1, $2, 51820, '{10.90.0.1/24}', $3, 2)", new[] { 0, 1, 2 }),
                ("INSERT INTO address_allocations VALUES ($1, '10.90.0.1/32', NULL), ($1, '10.90.0.2/32', $2), ($1, '10.90.0.16/28', $3), ($1, '10.90.0.17/32', $3)", new[] { 0, 3, 4 }),
                ("INSERT INTO peers (fleet, public_key, name, allowed_ips, row_version) VALUES ($1, $2, 'a', '{10.90.0.2/32}', 1), ($1, $3, 'b', '{10.90.0.16/28,10.90.0.17/32}', 2)", new[] { 0, 3, 4 }),
            })
            {
                var cmd = new NpgsqlBatchCommand(sql);
                foreach (int i in used) cmd.Parameters.Add(new NpgsqlParameter { Value = values[i] });
                batch.BatchCommands.Add(cmd);
            }
            batch.ExecuteNonQuery();
        }
        using var registry = PostgresFleetRegistry.Open(cs, Fleet, FleetSecret.Derive(Fleet, PostgresFleetRegistryTests.Secret));
        using (var c = new NpgsqlConnection(cs))
        {
            c.Open();
            using var cmd = new NpgsqlCommand("SELECT array_agg(version ORDER BY version) FROM schema_version", c);
            Assert.Equal(Enumerable.Range(1, Schema.Latest).ToArray(), (int[])cmd.ExecuteScalar()!);
        }
        var changes = registry.GetChanges(0);
        Assert.Equal(2, changes.Version);
        Assert.Equal(["a", "b"], changes.Changed.OrderBy(p => p.RowVersion).Select(p => p.Name));
        Assert.Equal([IpPrefix.Parse("10.90.0.16/28"), IpPrefix.Parse("10.90.0.17/32")], changes.Changed.Single(p => p.PublicKey == b).AllowedIPs);
        // The new constraint is in force on the old rows: inside b's range is refused; the allocator's next (.18) is
        // inside b's range too, so it walks the gaps and finds .3.
        var refused = Assert.Throws<WgException>(() => registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey(), AllowedIPs = [IpPrefix.Parse("10.90.0.20/32")] }));
        Assert.Equal("AllowedIPsOverlap", refused.ErrorId);
        Assert.Contains("peer " + b.ToBase64()[..8], refused.Message, StringComparison.Ordinal);
        Assert.Equal([IpPrefix.Parse("10.90.0.3/32")], registry.AddPeer(new PeerSpec { PublicKey = NewPeerKey() }).AllowedIPs);
        Assert.Equal(3, registry.GetVersion());
        Assert.Equal("b2", registry.UpdatePeer(b, new PeerUpdate { Name = "b2" }).Name);
    }

    /// <summary>Nothing half-applied: each peer's allocation rows are exactly its AllowedIPs, and no row is left without its peer.</summary>
    private void AssertAllocationsMatchPeers(string fleet)
    {
        using var c = new NpgsqlConnection(_pg.Cluster.ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand("""
            SELECT coalesce(p.public_key, a.public_key), p.allowed_ips::text, a.held::text FROM
              (SELECT public_key, array_agg(prefix::text ORDER BY prefix::text) AS held FROM address_allocations WHERE fleet = $1 AND public_key IS NOT NULL GROUP BY public_key) a
              FULL JOIN (SELECT public_key, ARRAY(SELECT x FROM unnest(allowed_ips) x ORDER BY x) AS allowed_ips FROM peers WHERE fleet = $1) p ON p.public_key = a.public_key
            WHERE p.allowed_ips IS DISTINCT FROM a.held AND NOT (a.held IS NULL AND p.allowed_ips = '{}')
            """, c);
        cmd.Parameters.AddWithValue(fleet);
        using var r = cmd.ExecuteReader();
        var wrong = new List<string>();
        while (r.Read()) wrong.Add($"{r.GetString(0)[..8]}: peer {(r.IsDBNull(1) ? "none" : r.GetString(1))}, allocations {(r.IsDBNull(2) ? "none" : r.GetString(2))}");
        Assert.Empty(wrong);
    }
}

/// <summary>Test classes whose concurrent database writers run after and apart from all others.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DatabaseConcurrency
{
    public const string Name = "Database concurrency (not parallel)";
}
