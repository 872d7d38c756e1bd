using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;
using WgFleet;
using WgFleet.Postgres;

// The fleet at scale (docs/fleet.md): N peers in the registry, one instance joining, change propagation under a
// target write rate, the instance's memory and its database load at idle. Every loop is bounded in count and time.
// Usage: FleetBench <connection string> <out.json> [peers=100000] [changes=5000] [rate=1000] [idleSeconds=30] [minSyncMs=50]
if (args.Length < 2) { Console.Error.WriteLine("usage: FleetBench <connection string> <out.json> [peers] [changes] [rate] [idleSeconds] [minSyncMs]"); return 2; }
string cs = args[0], outJson = args[1];
int peers = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 100_000;
int changes = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 5_000;
int rate = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1_000;
int idleSeconds = args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : 30;
int minSyncMs = args.Length > 6 ? int.Parse(args[6], CultureInfo.InvariantCulture) : 50;   // the instance's default
const string Fleet = "bench";
const string Secret = "the benchmark's fleet secret, not a real one";
var result = new Dictionary<string, object>();
// The writers below block (the registry API is synchronous): enough pool threads that they never starve the
// instance's own async loops in this process (which a real instance, alone in its process, never sees).
ThreadPool.SetMinThreads(64, 64);

using var fleetKey = WgPrivateKey.Generate();
using var registry = PostgresFleetRegistry.Open(cs, Fleet, FleetSecret.Derive(Fleet, Secret));
registry.CreateFleet(new FleetDefinition(fleetKey.PublicKey, 51820, [IpPrefix.Parse("10.64.0.1/12")]));

// 1. Writes through the registry API, one writer: allocation, overlap check, notify, one transaction each.
int apiPeers = Math.Min(2_000, peers);
var keys = new List<WgKey>(peers);
var sw = Stopwatch.StartNew();
for (int i = 0; i < apiPeers; i++) keys.Add(registry.AddPeer(new PeerSpec { PublicKey = RandomKey(), Name = $"api{i}" }).PublicKey);
result["ApiAddsPerSecond"] = Math.Round(apiPeers / sw.Elapsed.TotalSeconds);

// 2. The rest in bulk (setup, not a figure of the instance): COPY into peers and allocations, one version.
sw.Restart();
// Setup, not a figure: no command timeout (each allocation row is checked by the exclusion constraint's index).
using (var c = new NpgsqlConnection(cs + ";Command Timeout=0"))
{
    c.Open();
    using var tx = c.BeginTransaction();
    long version;
    using (var cmd = new NpgsqlCommand("UPDATE fleets SET version = version + 1 WHERE name = $1 RETURNING version", c, tx))
    {
        cmd.Parameters.AddWithValue(Fleet);
        version = (long)cmd.ExecuteScalar()!;
    }
    var rows = new List<(string Key, IpPrefix Address)>();
    uint baseAddress = 0x0A_40_10_00;   // 10.64.16.0: above what step 1 allocated
    for (int i = apiPeers; i < peers; i++)
    {
        var key = RandomKey();
        keys.Add(key);
        uint a = baseAddress + (uint)(i - apiPeers);
        rows.Add((key.ToBase64(), new IpPrefix(new System.Net.IPAddress(new[] { (byte)(a >> 24), (byte)(a >> 16), (byte)(a >> 8), (byte)a }), 32)));
    }
    using (var w = c.BeginBinaryImport("COPY peers (fleet, public_key, name, allowed_ips, row_version) FROM STDIN (FORMAT BINARY)"))
    {
        foreach (var (k, a) in rows) { w.StartRow(); w.Write(Fleet); w.Write(k); w.Write("bulk"); w.Write(new[] { a.ToString() }); w.Write(version); }
        w.Complete();
    }
    using (var w = c.BeginBinaryImport("COPY address_allocations (fleet, prefix, public_key) FROM STDIN (FORMAT BINARY)"))
    {
        foreach (var (k, a) in rows) { w.StartRow(); w.Write(Fleet); w.Write(new System.Net.IPNetwork(a.Address, 32), NpgsqlDbType.Cidr); w.Write(k); }
        w.Complete();
    }
    tx.Commit();
}
result["BulkLoadSeconds"] = Math.Round(sw.Elapsed.TotalSeconds, 1);
result["Peers"] = peers;

// The tables analysed once (as autovacuum would soon), then autovacuum off: its transactions would count as load.
using (var c = new NpgsqlConnection(cs))
{
    c.Open();
    foreach (var sql in new[] { "VACUUM ANALYZE", "ALTER SYSTEM SET autovacuum = off", "SELECT pg_reload_conf()" })
    {
#pragma warning disable CA2100 // constants
        using var cmd = new NpgsqlCommand(sql, c);
#pragma warning restore CA2100
        cmd.ExecuteNonQuery();
    }
}
// Baseline of the database's own background transactions (this probe included), before any instance. A backend
// publishes its counters up to 10 s late (PostgreSQL 15's PGSTAT_IDLE_INTERVAL): each window starts 12 s after the last activity.
await Task.Delay(TimeSpan.FromSeconds(12));
long b0 = Commits(cs);
await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
long b1 = Commits(cs);
double baseline = (b1 - b0) / (double)idleSeconds;
result["BaselineTransactionsPerSecond"] = Math.Round(baseline, 2);

// 3. An instance joins: load the fleet and every peer, and serve them.
GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
long rssBefore = Rss(), heapBefore = GC.GetTotalMemory(true);
sw.Restart();
using var instanceKey = WgPrivateKey.Parse(fleetKey.ExportBase64());
var instance = FleetInstance.Start(registry, new FleetInstanceOptions { PrivateKey = instanceKey, Name = "bench0", ListenPort = 0, Egress = EgressMode.None,
    MinSyncInterval = TimeSpan.FromMilliseconds(minSyncMs) });
result["MinSyncMs"] = minSyncMs;
result["JoinAndReadySeconds"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
if (instance.Server.PeerCount != peers) throw new InvalidOperationException($"the instance serves {instance.Server.PeerCount} of {peers} peers");
GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
long rssAfter = Rss(), heapAfter = GC.GetTotalMemory(true);
result["InstanceRssMiB"] = Math.Round((rssAfter - rssBefore) / 1048576.0, 1);
result["InstanceRssBytesPerPeer"] = (rssAfter - rssBefore) / peers;
result["InstanceHeapBytesPerPeer"] = (heapAfter - heapBefore) / peers;

// 4. Database load of one idle instance: committed transactions per second (pg_stat_database), minus this probe's own.
await Task.Delay(TimeSpan.FromSeconds(12));
long x0 = Commits(cs);
await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
long x1 = Commits(cs);
result["IdleTransactionsPerSecond"] = Math.Round((x1 - x0) / (double)idleSeconds - baseline, 2);
result["IdleSeconds"] = idleSeconds;

// 5. Propagation: `changes` renames at `rate` per second (at most 60 s), eight writers; the latency of each is
// from its commit (the write returning) to the instance having applied its version.
var committed = new long[changes];
var started = new long[changes];
var versions = new long[changes];
int next = -1;
var applied = new System.Collections.Concurrent.ConcurrentDictionary<long, long>();
using var stopWatching = new CancellationTokenSource();
var clock = Stopwatch.StartNew();
var watcher = Task.Factory.StartNew(() =>
{
    long seen = instance.AppliedVersion;
    while (!stopWatching.IsCancellationRequested)
    {
        long v = instance.AppliedVersion;
        if (v > seen) { long now = clock.ElapsedTicks; for (long i = seen + 1; i <= v; i++) applied[i] = now; seen = v; }
        else Thread.Sleep(1);   // not a spin: on two cores a spinning watcher takes half the machine from what it measures
    }
}, TaskCreationOptions.LongRunning);
var deadline = TimeSpan.FromSeconds(60);
var writers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
{
    while (true)
    {
        int i = Interlocked.Increment(ref next);
        if (i >= changes) return;
        var due = TimeSpan.FromSeconds(i / (double)rate);
        if (due > deadline) return;
        var wait = due - clock.Elapsed;
        if (wait > TimeSpan.Zero) await Task.Delay(wait);
        started[i] = clock.ElapsedTicks;
        var p = registry.UpdatePeer(keys[i % keys.Count], new PeerUpdate { Name = $"c{i}" });
        committed[i] = clock.ElapsedTicks;
        versions[i] = p.RowVersion;
    }
})).ToArray();
await Task.WhenAll(writers);
double writeSeconds = clock.Elapsed.TotalSeconds;
var sinceIdle = Stopwatch.StartNew();
long last = versions.Max();
var until = Stopwatch.StartNew();
while (instance.AppliedVersion < last && until.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(10);
await Task.Delay(50);
await stopWatching.CancelAsync();
await watcher;
var latencies = Enumerable.Range(0, changes).Where(i => versions[i] > 0 && applied.ContainsKey(versions[i]))
    .Select(i => Math.Max(0, applied[versions[i]] - committed[i]) * 1000.0 / Stopwatch.Frequency).Order().ToArray();
int done = versions.Count(v => v > 0);
result["Changes"] = done;
result["ChangesApplied"] = latencies.Length;
result["AchievedChangesPerSecond"] = Math.Round(done / writeSeconds);
result["TargetChangesPerSecond"] = rate;
result["PropagationP50Ms"] = Math.Round(Percentile(latencies, 0.50), 1);
result["PropagationP99Ms"] = Math.Round(Percentile(latencies, 0.99), 1);
result["PropagationMaxMs"] = Math.Round(latencies.Length > 0 ? latencies[^1] : double.NaN, 1);
// How long one write took (call to return): with 8 writers, 8 / this bounds the rate the benchmark can reach.
var writeMs = Enumerable.Range(0, changes).Where(i => versions[i] > 0).Select(i => (committed[i] - started[i]) * 1000.0 / Stopwatch.Frequency).Order().ToArray();
result["WriteP50Ms"] = Math.Round(Percentile(writeMs, 0.50), 2);
result["WriteP99Ms"] = Math.Round(Percentile(writeMs, 0.99), 1);
result["LoadAverage"] = File.ReadAllText("/proc/loadavg").Split(' ')[0];
result["RejectedPeers"] = instance.RejectedPeers;

// The instance's own database load while the changes came in: commits since the idle window ended, minus the
// writes themselves, the database's background, and the idle rate for the time after the writes (counters are
// published up to 10 s late: read 12 s after the last write), over the time the writes ran.
await Task.Delay(TimeSpan.FromSeconds(12));
long x2 = Commits(cs);
double tail = sinceIdle.Elapsed.TotalSeconds, span = writeSeconds + tail, idleRate = (double)result["IdleTransactionsPerSecond"];
result["InstanceTransactionsPerSecondUnderWrites"] = Math.Round(((x2 - x1) - done - baseline * span - idleRate * tail) / writeSeconds, 1);

instance.Dispose();
File.WriteAllText(outJson, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine(File.ReadAllText(outJson));
return 0;

static WgKey RandomKey() => new(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

static long Rss()
{
    var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
}

static long Commits(string cs)
{
    using var c = new NpgsqlConnection(cs + ";Pooling=false");
    c.Open();
    using var cmd = new NpgsqlCommand("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", c);
    return (long)cmd.ExecuteScalar()!;
}

static double Percentile(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
