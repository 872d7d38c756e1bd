using System.Net;
using System.Net.Sockets;
using Npgsql;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgFleet.Postgres;

/// <summary>
/// <see cref="IFleetRegistry"/> on PostgreSQL (Npgsql). The schema is created and migrated on open
/// (<see cref="Schema"/>). Every peer write is one batch, one transaction, one round trip
/// (PostgresFleetRegistry.Peers.cs): overlapping AllowedIPs and double allocations are refused by the
/// database's constraints (an exclusion constraint and UNIQUE (fleet, prefix)), and the fleet's version is bumped
/// by the write's last statement, so the fleet row lock that orders versions is held only for that statement and
/// the commit. The new version is sent with pg_notify in the same transaction, so listeners hear of a change
/// only once it is committed.
/// The connection string may hold a password: it never appears in a message (only host, port and database).
/// </summary>
public sealed partial class PostgresFleetRegistry : IFleetRegistry
{
    /// <summary>The LISTEN/NOTIFY channel; the payload is "fleet:version".</summary>
    public const string Channel = "wg_fleet_changes";

    private readonly NpgsqlDataSource _source;
    /// <summary>The listener's connections: not pooled, so a LISTEN never outlives its listener in an idle pooled connection.</summary>
    private readonly NpgsqlDataSource _listenSource;
    private readonly FleetSecret _secret;
    private readonly string _where;

    private PostgresFleetRegistry(NpgsqlDataSource source, NpgsqlDataSource listenSource, string fleet, FleetSecret secret, string where)
    {
        _source = source;
        _listenSource = listenSource;
        Fleet = fleet;
        _secret = secret;
        _where = where;
    }

    public string Fleet { get; }

    /// <summary>Where the registry is, for messages: host, port and database, never the password.</summary>
    public string Location => _where;

    /// <summary>Opens the registry of <paramref name="fleet"/> and migrates the schema. Takes ownership of <paramref name="secret"/>.
    /// InvalidRegistry for a malformed connection string, RegistryUnavailable when the database cannot be reached.</summary>
    public static PostgresFleetRegistry Open(string connectionString, string fleet, FleetSecret secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        CheckFleetName(fleet);
        NpgsqlConnectionStringBuilder builder;
        try { builder = new NpgsqlConnectionStringBuilder(connectionString); }
        catch (ArgumentException)
        {
            secret.Dispose();
            // Not the parser's message: it may quote the string, password included.
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidRegistry",
                "The registry connection string is not a valid PostgreSQL connection string (e.g. 'Host=db;Database=wg;Username=wg;Password=...').");
        }
        builder.ApplicationName ??= "WireGuardGateway";
        // Npgsql's automatic preparation: the few statements used over and over (the writes, the sync's reads)
        // are parsed and planned once per connection instead of at every call. The caller's setting wins.
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 32;
        // No reset when a connection goes back to the pool: the registry leaves no session state behind (no SET,
        // no temporary table, advisory locks only transaction-scoped, LISTEN only on the unpooled listener
        // connection), and the reset was a transaction of its own before every use (half of the database's
        // transactions: each write and each sync counted twice). Prepared statements are meant to stay anyway.
        builder.NoResetOnClose = true;
        string where = $"{builder.Host ?? "localhost"}:{builder.Port}/{builder.Database ?? builder.Username ?? "?"}";
        var source = NpgsqlDataSource.Create(builder);
        var listen = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Pooling = false };
        var registry = new PostgresFleetRegistry(source, NpgsqlDataSource.Create(listen), fleet, secret, where);
        try
        {
            registry.Run(c => Schema.Migrate(c));
            return registry;
        }
        catch
        {
            registry.Dispose();
            throw;
        }
    }

    internal static void CheckFleetName(string fleet)
    {
        if (string.IsNullOrEmpty(fleet) || fleet.Length > 63 || !fleet.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidFleetName",
                "A fleet name has 1 to 63 letters, digits, '-', '_' or '.'.");
    }

    public FleetInfo CreateFleet(FleetDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        if (definition.Addresses.Count == 0)
            throw new WgException(WgErrorKind.InvalidArgument, "NoAddress", "A fleet needs at least one address prefix, e.g. 10.8.0.1/24.");
        return Run(c =>
        {
            using var tx = c.BeginTransaction();
            using (var cmd = new NpgsqlCommand("INSERT INTO fleets (name, public_key, listen_port, addresses, secret_check) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(definition.PublicKey.ToBase64());
                cmd.Parameters.AddWithValue(definition.ListenPort);
                cmd.Parameters.AddWithValue(definition.Addresses.Select(a => a.ToString()).ToArray());
                cmd.Parameters.AddWithValue(_secret.CheckValue);
                if (cmd.ExecuteNonQuery() == 0)
                    throw new WgException(WgErrorKind.AlreadyExists, "FleetExists", $"Fleet '{Fleet}' already exists in the registry at {_where}.");
            }
            // The gateway's own addresses are taken: no peer may be given them.
            foreach (var a in definition.Addresses)
            {
                using var cmd = new NpgsqlCommand("INSERT INTO address_allocations (fleet, prefix, public_key) VALUES ($1, $2, NULL)", c, tx);
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(new IPNetwork(a.Address, a.MaxBits));
                cmd.ExecuteNonQuery();
            }
            tx.Commit();
            return ReadFleet(c, null);
        });
    }

    public FleetInfo GetFleet() => Run(c => ReadFleet(c, null));

    private FleetInfo ReadFleet(NpgsqlConnection c, NpgsqlTransaction? tx)
    {
        using var cmd = new NpgsqlCommand("SELECT public_key, listen_port, addresses, secret_check, version, created_at FROM fleets WHERE name = $1", c, tx);
        cmd.Parameters.AddWithValue(Fleet);
        using var r = cmd.ExecuteReader();
        if (!r.Read())
            throw new WgException(WgErrorKind.NotFound, "FleetNotFound", $"No fleet named '{Fleet}' in the registry at {_where}; create it with New-WgFleet.");
        if (!_secret.Matches(r.GetFieldValue<byte[]>(3))) throw FleetSecret.Mismatch();
        return new FleetInfo(Fleet, WgKey.Parse(r.GetString(0)), r.GetInt32(1),
            r.GetFieldValue<string[]>(2).Select(IpPrefix.Parse).ToArray(), r.GetInt64(4), r.GetFieldValue<DateTimeOffset>(5));
    }

    public long GetVersion() => Run(c =>
    {
        using var cmd = new NpgsqlCommand("SELECT version FROM fleets WHERE name = $1", c);
        cmd.Parameters.AddWithValue(Fleet);
        return cmd.ExecuteScalar() is long v ? v
            : throw new WgException(WgErrorKind.NotFound, "FleetNotFound", $"No fleet named '{Fleet}' in the registry at {_where}.");
    });

    public FleetChanges GetChanges(long sinceVersion) => Run(c =>
    {
        // One snapshot: the version and the rows up to it are read in one repeatable-read transaction, as one
        // batch (Npgsql sends the BEGIN with it): one round trip and the commit.
        using var tx = c.BeginTransaction(System.Data.IsolationLevel.RepeatableRead);
        using var batch = new NpgsqlBatch(c, tx);
        Command(batch, "SELECT version, policy_version FROM fleets WHERE name = $1", Fleet);
        Command(batch, $"SELECT {PeerColumns} FROM peers WHERE fleet = $1 AND row_version > $2 ORDER BY row_version", Fleet, sinceVersion);
        if (sinceVersion > 0) Command(batch, "SELECT public_key FROM removed_peers WHERE fleet = $1 AND row_version > $2", Fleet, sinceVersion);
        long version, policyVersion = 0;
        var changed = new List<FleetPeer>();
        var removed = new List<WgKey>();
        using (var r = batch.ExecuteReader())
        {
            if (!r.Read()) throw new WgException(WgErrorKind.NotFound, "FleetNotFound", $"No fleet named '{Fleet}' in the registry at {_where}.");
            version = r.GetInt64(0);
            policyVersion = r.GetInt64(1);
            r.NextResult();
            while (r.Read()) changed.Add(ReadPeer(r));
            if (sinceVersion > 0 && r.NextResult())
                while (r.Read()) removed.Add(WgKey.Parse(r.GetString(0)));
        }
        var policy = sinceVersion == 0 || policyVersion > sinceVersion ? ReadPolicy(c, tx) : null;
        tx.Commit();
        return new FleetChanges(version, changed, removed, policy);
    });

    public void ReportInstance(InstanceReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        Run(c =>
        {
            using var tx = c.BeginTransaction();
            using (var cmd = new NpgsqlCommand("""
                INSERT INTO instances (fleet, id, endpoint, peer_count, rx_bytes, tx_bytes, node_key, mesh_endpoint) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (fleet, id) DO UPDATE SET endpoint = EXCLUDED.endpoint, heartbeat = now(), peer_count = EXCLUDED.peer_count,
                    rx_bytes = EXCLUDED.rx_bytes, tx_bytes = EXCLUDED.tx_bytes, stopped = false,
                    node_key = EXCLUDED.node_key, mesh_endpoint = EXCLUDED.mesh_endpoint
                """, c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(report.InstanceId);
                cmd.Parameters.AddWithValue((object?)report.Endpoint ?? DBNull.Value);
                cmd.Parameters.AddWithValue(report.PeerCount);
                cmd.Parameters.AddWithValue(report.ReceivedBytes);
                cmd.Parameters.AddWithValue(report.SentBytes);
                cmd.Parameters.AddWithValue((object?)report.NodeKey?.ToBase64() ?? DBNull.Value);
                cmd.Parameters.AddWithValue((object?)report.MeshEndpoint ?? DBNull.Value);
                cmd.ExecuteNonQuery();
            }
            if (report.Peers.Count > 0)
            {
                // One statement for every changed peer: arrays unnested into rows.
                using var cmd = new NpgsqlCommand("""
                    INSERT INTO live_peers (fleet, instance_id, public_key, endpoint, latest_handshake, rx_bytes, tx_bytes, quota_period_start, quota_used, quota_epoch)
                    SELECT $1, $2, k, e, h, rx, tx, qs, qu, qe
                    FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::bigint[], $8::timestamptz[], $9::bigint[], $10::bigint[]) AS u(k, e, h, rx, tx, qs, qu, qe)
                    ON CONFLICT (fleet, public_key, instance_id) DO UPDATE SET endpoint = EXCLUDED.endpoint,
                        latest_handshake = EXCLUDED.latest_handshake, rx_bytes = EXCLUDED.rx_bytes, tx_bytes = EXCLUDED.tx_bytes,
                        quota_period_start = EXCLUDED.quota_period_start, quota_used = EXCLUDED.quota_used, quota_epoch = EXCLUDED.quota_epoch
                    """, c, tx);
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(report.InstanceId);
                cmd.Parameters.AddWithValue(report.Peers.Select(p => p.PublicKey.ToBase64()).ToArray());
                cmd.Parameters.AddWithValue(report.Peers.Select(p => p.Endpoint).ToArray());
                cmd.Parameters.AddWithValue(report.Peers.Select(p => p.LatestHandshake).ToArray());
                cmd.Parameters.AddWithValue(report.Peers.Select(p => p.ReceivedBytes).ToArray());
                cmd.Parameters.AddWithValue(report.Peers.Select(p => p.SentBytes).ToArray());
                cmd.Parameters.AddWithValue(report.Peers.Select(p => p.QuotaPeriodStart).ToArray());
                cmd.Parameters.AddWithValue(report.Peers.Select(p => p.QuotaUsed).ToArray());
                cmd.Parameters.AddWithValue(report.Peers.Select(p => p.QuotaEpoch).ToArray());
                cmd.ExecuteNonQuery();
            }
            tx.Commit();
            return 0;
        });
    }

    public void RemoveInstance(string instanceId) => Run(c =>
    {
        using var cmd = new NpgsqlCommand("UPDATE instances SET stopped = true, heartbeat = now() WHERE fleet = $1 AND id = $2", c);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.Parameters.AddWithValue(instanceId);
        return cmd.ExecuteNonQuery();
    });

    public IReadOnlyList<InstanceInfo> GetInstances() => Run(c =>
    {
        using var cmd = new NpgsqlCommand("SELECT id, endpoint, started_at, heartbeat, peer_count, rx_bytes, tx_bytes, stopped, node_key, mesh_endpoint FROM instances WHERE fleet = $1 ORDER BY id", c);
        cmd.Parameters.AddWithValue(Fleet);
        using var r = cmd.ExecuteReader();
        var list = new List<InstanceInfo>();
        while (r.Read())
            list.Add(new InstanceInfo(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetFieldValue<DateTimeOffset>(2), r.GetFieldValue<DateTimeOffset>(3),
                r.GetInt32(4), r.GetInt64(5), r.GetInt64(6), r.GetBoolean(7),
                r.IsDBNull(8) ? null : WgKey.Parse(r.GetString(8)), r.IsDBNull(9) ? null : r.GetString(9)));
        return list;
    });

    public IReadOnlyDictionary<WgKey, FleetPeerLive> GetLiveState() => Run(c =>
    {
        // Each instance reports its own cumulative counters, one row per (peer, instance): summing the rows
        // counts each instance's bytes once. The session is the instance with the latest handshake.
        using var cmd = new NpgsqlCommand("""
            SELECT public_key,
                   (array_agg(instance_id ORDER BY latest_handshake DESC NULLS LAST))[1],
                   (array_agg(endpoint ORDER BY latest_handshake DESC NULLS LAST))[1],
                   max(latest_handshake), sum(rx_bytes)::bigint, sum(tx_bytes)::bigint
            FROM live_peers WHERE fleet = $1 GROUP BY public_key
            """, c);
        cmd.Parameters.AddWithValue(Fleet);
        using var r = cmd.ExecuteReader();
        var map = new Dictionary<WgKey, FleetPeerLive>();
        while (r.Read())
        {
            DateTimeOffset? handshake = r.IsDBNull(3) ? null : r.GetFieldValue<DateTimeOffset>(3);
            map[WgKey.Parse(r.GetString(0))] = new FleetPeerLive(handshake is null ? null : r.GetString(1),
                handshake is null || r.IsDBNull(2) ? null : r.GetString(2), handshake, r.GetInt64(4), r.GetInt64(5));
        }
        return map;
    });

    public IReadOnlyList<QuotaUsage> GetQuotaUsage() => Run(c =>
    {
        using var cmd = new NpgsqlCommand(
            "SELECT public_key, instance_id, quota_period_start, quota_used, quota_epoch FROM live_peers WHERE fleet = $1 AND quota_period_start IS NOT NULL", c);
        cmd.Parameters.AddWithValue(Fleet);
        using var r = cmd.ExecuteReader();
        var list = new List<QuotaUsage>();
        while (r.Read())
            list.Add(new QuotaUsage(WgKey.Parse(r.GetString(0)), r.GetString(1), r.GetFieldValue<DateTimeOffset>(2), r.GetInt64(3), r.GetInt64(4)));
        return list;
    });

    public async Task ListenAsync(Action<long> notified, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(notified);
        NpgsqlConnection c;
        try { c = await _listenSource.OpenConnectionAsync(cancellation).ConfigureAwait(false); }
        catch (Exception e) when (IsUnavailable(e)) { throw Unavailable(e); }
        await using (c.ConfigureAwait(false))
        {
            string prefix = Fleet + ":";
            c.Notification += (_, n) =>
            {
                if (n.Payload.StartsWith(prefix, StringComparison.Ordinal) && long.TryParse(n.Payload.AsSpan(prefix.Length), System.Globalization.CultureInfo.InvariantCulture, out long v))
                    notified(v);
            };
            try
            {
                await using (var cmd = new NpgsqlCommand($"LISTEN {Channel}", c))
                    await cmd.ExecuteNonQueryAsync(cancellation).ConfigureAwait(false);
                while (true) await c.WaitAsync(cancellation).ConfigureAwait(false);
            }
            catch (Exception e) when (IsUnavailable(e) && !cancellation.IsCancellationRequested) { throw Unavailable(e); }
        }
    }

    /// <summary>Runs <paramref name="work"/> on a pooled connection; the database being unreachable (or going away
    /// mid-transaction, which then rolls back) is RegistryUnavailable.</summary>
    private T Run<T>(Func<NpgsqlConnection, T> work)
    {
        try
        {
            using var c = _source.OpenConnection();
            return work(c);
        }
        catch (Exception e) when (IsUnavailable(e)) { throw Unavailable(e); }
    }

    private static bool IsUnavailable(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState is "57P01" or "57P02" or "57P03" or "53300",
        NpgsqlException => true,   // socket errors, timeouts, a broken connection
        SocketException or TimeoutException or IOException => true,
        InvalidOperationException when e.InnerException is NpgsqlException => true,
        _ => false,
    };

    private WgException Unavailable(Exception e) => new(WgErrorKind.ResourceUnavailable, "RegistryUnavailable",
        $"The fleet registry at {_where} is unreachable ({(e is PostgresException p ? p.SqlState : e.GetType().Name)}); nothing was changed. The instances keep serving their last known configuration.");

    public void Dispose()
    {
        _source.Dispose();
        _listenSource.Dispose();
        _secret.Dispose();
    }
}
