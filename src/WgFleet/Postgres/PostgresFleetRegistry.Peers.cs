using System.Net;
using Npgsql;
using NpgsqlTypes;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgFleet.Postgres;

// Peer writes. Each one is ONE NpgsqlBatch sent without an explicit transaction: PostgreSQL runs everything up
// to the batch's Sync as one implicit transaction, and Npgsql documents that an error in any command skips the
// later ones and rolls the earlier ones back (NpgsqlBatchCommand.AppendErrorBarrier, npgsql.org API docs). So a
// write is one round trip, all or nothing, and no lock is ever held while the server waits for this client.
//
// A batch has up to three parts, in this order, which is also the only order in which its locks are taken:
//   (a) the peer's own row, FOR UPDATE (updates and removals): writers of one peer queue here, and the later
//       statements, each with a fresh READ COMMITTED snapshot, see what the previous writer committed;
//   (b) address_allocations: rows deleted and inserted. Overlaps are refused by the exclusion constraint of
//       schema step 3 (SQLSTATE 23P01; an in-progress conflicting insert is waited for, then refused if it
//       commits), so this part needs no fleet-wide lock at all;
//   (c) the last statement: UPDATE fleets SET version = version + 1 ... RETURNING, in the same statement as the
//       peer row it versions (a data-modifying CTE) and pg_notify in its RETURNING list. The fleet row lock is
//       taken here and held only for the rest of this statement and the commit.
// The fleet row lock orders commits: a writer waiting on it reads the version its predecessor committed, so
// versions are committed in increasing order, and a reader whose snapshot shows version V (GetChanges, one
// repeatable-read snapshot) sees every change with a version <= V and none above it. A sequence would not do:
// its numbers are taken in one order and committed in another, and a reader could pass a version whose
// change commits later. Under the fleet lock a statement only touches its own peer row (already locked in (a),
// or new) and that peer's tombstone, so a lock holder never waits for anything but CPU: no deadlock with (a)
// or (b). Two writers inserting several mutually overlapping ranges in a crossed order can still deadlock in
// (b); PostgreSQL detects it (40P01) and the write is retried, having changed nothing.
// Guard: the version bump also requires the fleet's secret check value, and a peer row written with no bump
// gets a NULL row_version, refused by NOT NULL (23502): a wrong secret or a missing fleet fails the whole batch.
public sealed partial class PostgresFleetRegistry
{
    private const string PeerColumns = "public_key, name, allowed_ips, endpoint, keepalive, enabled, expires_at, tags, acl, psk_sealed, row_version, " +
        "upload_bps, upload_burst, download_bps, download_burst, quota_bytes, quota_period, quota_epoch";

    /// <summary>(c)'s version bump as a CTE named v: $1 fleet, $2 secret check value; {0} is a further condition.</summary>
    private const string BumpCte = "v AS (UPDATE fleets SET version = version + 1 WHERE name = $1 AND secret_check = $2{0} " +
        "RETURNING version, pg_notify('" + Channel + "', name || ':' || version))";

    /// <summary>Automatic allocations that lost a race (another writer took the candidate first) are tried again
    /// optimistically this many times, then under the ranges lock (see AddPeer). Tests set 0 to take the locked
    /// path from the first try.</summary>
    internal int OptimisticAllocations { get; set; } = 4;

    /// <summary>All tries of one automatic allocation, optimistic and locked.</summary>
    private const int AllocationAttempts = 12;

    /// <summary>The fleet's identity (key, addresses, secret check), read once: it never changes after CreateFleet.</summary>
    private FleetInfo? _identity;

    private FleetInfo Identity(NpgsqlConnection c) => _identity ??= ReadFleet(c, null);

    public FleetPeer AddPeer(PeerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        CheckName(spec.Name);
        var tags = CheckTags(spec.Tags);
        var limits = new PeerLimits(PeerChecks.Limit(spec.UploadLimit), PeerChecks.Limit(spec.DownloadLimit), PeerChecks.Quota(spec.Quota));
        return Run(c =>
        {
            var fleet = Identity(c);
            if (spec.PublicKey == fleet.PublicKey)
                throw new WgException(WgErrorKind.InvalidArgument, "PeerIsGateway", $"Key {spec.PublicKey} is fleet '{Fleet}''s own public key, not a peer's.");
            bool allocate = spec.AllowedIPs is not { Count: > 0 };
            List<IpPrefix>? previous = null;
            bool walkGaps = false;
            for (int attempt = 1; ; attempt++)
            {
                // With many writers one can lose the race for the next address again and again (eight writers
                // lost 32 straight races about once in a hundred runs). After a few losses the candidate is read
                // under the ranges lock, which every range writer takes: nobody can take it in between, and a
                // conflict left then means the candidate lies in a range held already, so the gaps are walked.
                bool locked = allocate && attempt > OptimisticAllocations;
                using var tx = locked ? c.BeginTransaction() : null;
                if (tx is not null) LockRanges(c, tx);
                var allowed = allocate ? Allocate(c, fleet, walkGaps) : Normalize(spec.AllowedIPs!);
                try
                {
                    var peer = InsertPeer(c, spec, tags, limits, allowed);
                    tx?.Commit();
                    return peer;
                }
                catch (PostgresException e) when (allocate && IsAllocationConflict(e) && attempt < AllocationAttempts)
                {
                    tx?.Rollback();
                    // Optimistic: another writer committed this candidate first (the constraint waited for it), or
                    // the candidate lies inside a range held already: the same candidate twice means the latter.
                    walkGaps |= locked || previous is not null && previous.SequenceEqual(allowed);
                    previous = allowed;
                }
                catch (PostgresException e) when (IsAllocationConflict(e) || e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "peers_pkey")
                {
                    tx?.Rollback();
                    if (ReadPeer(c, null, spec.PublicKey) is not null)
                        throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists", $"A peer with public key {spec.PublicKey} already exists in fleet '{Fleet}'.");
                    throw Overlap(c, spec.PublicKey, allowed);
                }
            }
        });
    }

    /// <summary>A peer's bandwidth limits and quota as given to a write (already checked).</summary>
    private readonly record struct PeerLimits(WgEngine.Policy.RateLimit? Upload, WgEngine.Policy.RateLimit? Download, WgEngine.Policy.DataQuota? Quota);

    private FleetPeer InsertPeer(NpgsqlConnection c, PeerSpec spec, IReadOnlyList<string> tags, PeerLimits limits, List<IpPrefix> allowed) => Batch(c, b =>
    {
        string key = spec.PublicKey.ToBase64();
        LockRanges(b);
        // (b) the ranges, in one order (sorted) for every writer.
        Command(b, "INSERT INTO address_allocations (fleet, prefix, public_key) SELECT $1, p, $2 FROM unnest($3::cidr[]) AS p",
            Fleet, key, Cidrs(allowed));
        // (c) version, tombstone cleared, the row.
        var cmd = Command(b, $"""
            WITH {Bump("")},
                 t AS (DELETE FROM removed_peers WHERE fleet = $1 AND public_key = $3 AND EXISTS (SELECT 1 FROM v))
            INSERT INTO peers (fleet, public_key, name, allowed_ips, endpoint, keepalive, enabled, expires_at, tags, acl, psk_sealed, row_version,
                               upload_bps, upload_burst, download_bps, download_burst, quota_bytes, quota_period)
            VALUES ($1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, (SELECT version FROM v), $13, $14, $15, $16, $17, $18)
            RETURNING {PeerColumns}
            """, Fleet, _secret.CheckValue, key);
        Param(cmd, NpgsqlDbType.Text, spec.Name);
        Param(cmd, NpgsqlDbType.Array | NpgsqlDbType.Text, allowed.Select(p => p.ToString()).ToArray());
        Param(cmd, NpgsqlDbType.Text, spec.EndpointText ?? spec.Endpoint?.ToString());
        Param(cmd, NpgsqlDbType.Integer, spec.PersistentKeepalive);
        Param(cmd, NpgsqlDbType.Boolean, !spec.Disabled);
        Param(cmd, NpgsqlDbType.TimestampTz, spec.ExpiresAt);
        Param(cmd, NpgsqlDbType.Array | NpgsqlDbType.Text, tags.ToArray());
        Param(cmd, NpgsqlDbType.Array | NpgsqlDbType.Text, (spec.Acl ?? []).Select(a => a.ToString()).ToArray());
        Param(cmd, NpgsqlDbType.Bytea, spec.PresharedKey is { } psk ? _secret.Encrypt(psk, spec.PublicKey) : null);
        Param(cmd, NpgsqlDbType.Bigint, limits.Upload?.BitsPerSecond);
        Param(cmd, NpgsqlDbType.Bigint, limits.Upload?.BurstBytes ?? 0L);
        Param(cmd, NpgsqlDbType.Bigint, limits.Download?.BitsPerSecond);
        Param(cmd, NpgsqlDbType.Bigint, limits.Download?.BurstBytes ?? 0L);
        Param(cmd, NpgsqlDbType.Bigint, limits.Quota?.Bytes);
        Param(cmd, NpgsqlDbType.Text, limits.Quota?.Period.ToString());
    }, r =>
    {
        r.NextResult();   // past the range lock's row
        return r.Read() ? ReadPeer(r) : throw FleetGone(c);
    });

    public FleetPeer UpdatePeer(WgKey publicKey, PeerUpdate changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        CheckName(changes.Name);
        var tags = changes.Tags is null ? null : CheckTags(changes.Tags);
        var allowed = changes.AllowedIPs is null ? null : Normalize(changes.AllowedIPs);
        // A limit or quota given replaces the row's; a rate (or quota) of 0 removes it, as on a single server.
        var upload = changes.UploadLimit is { BitsPerSecond: not 0 } up ? PeerChecks.Limit(up) : null;
        var download = changes.DownloadLimit is { BitsPerSecond: not 0 } down ? PeerChecks.Limit(down) : null;
        var quota = changes.Quota is { Bytes: not 0 } q ? PeerChecks.Quota(q) : null;
        byte[]? newPsk = changes.ClearPresharedKey || changes.PresharedKey is not { } psk ? null : _secret.Encrypt(psk, publicKey);
        return Run(c =>
        {
            Identity(c);
            string key = publicKey.ToBase64();
            try
            {
                return Batch(c, b =>
                {
                    if (allowed is not null) LockRanges(b);
                    LockPeer(b, key);
                    if (allowed is not null)
                    {
                        Command(b, "DELETE FROM address_allocations WHERE fleet = $1 AND public_key = $2", Fleet, key);
                        Command(b, """
                            INSERT INTO address_allocations (fleet, prefix, public_key) SELECT $1, p, $2 FROM unnest($3::cidr[]) AS p
                            WHERE EXISTS (SELECT 1 FROM peers WHERE fleet = $1 AND public_key = $2)
                            """, Fleet, key, Cidrs(allowed));
                    }
                    // Unchanged columns keep their value (coalesce with the row's own), so nothing is read first.
                    var cmd = Command(b, $"""
                        WITH {Bump(" AND EXISTS (SELECT 1 FROM peers WHERE fleet = $1 AND public_key = $3)")}
                        UPDATE peers SET name = coalesce($4, name), allowed_ips = coalesce($5, allowed_ips), endpoint = coalesce($6, endpoint),
                            keepalive = coalesce($7, keepalive), expires_at = CASE WHEN $8 THEN NULL ELSE coalesce($9, expires_at) END,
                            tags = coalesce($10, tags), acl = coalesce($11, acl), psk_sealed = CASE WHEN $12 THEN NULL ELSE coalesce($13, psk_sealed) END,
                            upload_bps = CASE WHEN $14 THEN $15 ELSE upload_bps END, upload_burst = CASE WHEN $14 THEN $16 ELSE upload_burst END,
                            download_bps = CASE WHEN $17 THEN $18 ELSE download_bps END, download_burst = CASE WHEN $17 THEN $19 ELSE download_burst END,
                            quota_bytes = CASE WHEN $20 THEN $21 ELSE quota_bytes END, quota_period = CASE WHEN $20 THEN $22 ELSE quota_period END,
                            row_version = (SELECT version FROM v)
                        WHERE fleet = $1 AND public_key = $3
                        RETURNING {PeerColumns}
                        """, Fleet, _secret.CheckValue, key);
                    Param(cmd, NpgsqlDbType.Text, changes.Name);
                    Param(cmd, NpgsqlDbType.Array | NpgsqlDbType.Text, allowed?.Select(p => p.ToString()).ToArray());
                    Param(cmd, NpgsqlDbType.Text, changes.EndpointText ?? changes.Endpoint?.ToString());
                    Param(cmd, NpgsqlDbType.Integer, changes.PersistentKeepalive);
                    Param(cmd, NpgsqlDbType.Boolean, changes.ClearExpiresAt);
                    Param(cmd, NpgsqlDbType.TimestampTz, changes.ExpiresAt);
                    Param(cmd, NpgsqlDbType.Array | NpgsqlDbType.Text, tags?.ToArray());
                    Param(cmd, NpgsqlDbType.Array | NpgsqlDbType.Text, changes.Acl?.Select(a => a.ToString()).ToArray());
                    Param(cmd, NpgsqlDbType.Boolean, changes.ClearPresharedKey);
                    Param(cmd, NpgsqlDbType.Bytea, newPsk);
                    Param(cmd, NpgsqlDbType.Boolean, changes.UploadLimit is not null);
                    Param(cmd, NpgsqlDbType.Bigint, upload?.BitsPerSecond);
                    Param(cmd, NpgsqlDbType.Bigint, upload?.BurstBytes ?? 0L);
                    Param(cmd, NpgsqlDbType.Boolean, changes.DownloadLimit is not null);
                    Param(cmd, NpgsqlDbType.Bigint, download?.BitsPerSecond);
                    Param(cmd, NpgsqlDbType.Bigint, download?.BurstBytes ?? 0L);
                    Param(cmd, NpgsqlDbType.Boolean, changes.Quota is not null);
                    Param(cmd, NpgsqlDbType.Bigint, quota?.Bytes);
                    Param(cmd, NpgsqlDbType.Text, quota?.Period.ToString());
                }, r =>
                {
                    if (allowed is not null) r.NextResult();   // past the range lock's row
                    bool exists = r.Read();
                    r.NextResult();
                    return r.Read() ? ReadPeer(r) : exists ? throw FleetGone(c) : throw NotFound(publicKey);
                });
            }
            catch (PostgresException e) when (allowed is not null && IsAllocationConflict(e)) { throw Overlap(c, publicKey, allowed); }
        });
    }

    public bool RemovePeer(WgKey publicKey) => Run(c =>
    {
        Identity(c);
        string key = publicKey.ToBase64();
        return Batch(c, b =>
        {
            LockPeer(b, key);
            Command(b, "DELETE FROM address_allocations WHERE fleet = $1 AND public_key = $2", Fleet, key);
            // The tombstone takes the row's place at the new version; NULL (a failed guard) fails the batch.
            Command(b, $"""
                WITH {Bump(" AND EXISTS (SELECT 1 FROM peers WHERE fleet = $1 AND public_key = $3)")},
                     d AS (DELETE FROM peers WHERE fleet = $1 AND public_key = $3 RETURNING public_key),
                     t AS (INSERT INTO removed_peers (fleet, public_key, row_version) SELECT $1, public_key, (SELECT version FROM v) FROM d
                           ON CONFLICT (fleet, public_key) DO UPDATE SET row_version = EXCLUDED.row_version RETURNING 1)
                SELECT count(*) FROM t
                """, Fleet, _secret.CheckValue, key);
        }, r =>
        {
            r.Read();
            r.NextResult();
            r.Read();
            return r.GetInt64(0) > 0;
        });
    });

    public bool SetEnabled(WgKey publicKey, bool enabled) => Run(c =>
    {
        Identity(c);
        string key = publicKey.ToBase64();
        return Batch(c, b =>
        {
            LockPeer(b, key);
            var cmd = Command(b, $"""
                WITH {Bump(" AND EXISTS (SELECT 1 FROM peers WHERE fleet = $1 AND public_key = $3 AND enabled <> $4)")},
                     p AS (UPDATE peers SET enabled = $4, row_version = (SELECT version FROM v) WHERE fleet = $1 AND public_key = $3 AND enabled <> $4 RETURNING 1)
                SELECT count(*) FROM p
                """, Fleet, _secret.CheckValue, key);
            Param(cmd, NpgsqlDbType.Boolean, enabled);
        }, r =>
        {
            bool exists = r.Read();
            r.NextResult();
            r.Read();
            return r.GetInt64(0) > 0 || (exists ? false : throw NotFound(publicKey));
        });
    });

    public void ResetQuota(WgKey publicKey) => Run(c =>
    {
        Identity(c);
        string key = publicKey.ToBase64();
        return Batch(c, b =>
        {
            LockPeer(b, key);
            Command(b, $"""
                WITH {Bump(" AND EXISTS (SELECT 1 FROM peers WHERE fleet = $1 AND public_key = $3)")},
                     p AS (UPDATE peers SET quota_epoch = quota_epoch + 1, row_version = (SELECT version FROM v) WHERE fleet = $1 AND public_key = $3 RETURNING 1)
                SELECT count(*) FROM p
                """, Fleet, _secret.CheckValue, key);
        }, r =>
        {
            bool exists = r.Read();
            r.NextResult();
            r.Read();
            if (r.GetInt64(0) > 0) return true;
            throw exists ? FleetGone(c) : NotFound(publicKey);
        });
    });

    private static string Bump(string condition) => string.Format(System.Globalization.CultureInfo.InvariantCulture, BumpCte, condition);

    private const string RangesLockSql = "SELECT pg_advisory_xact_lock(hashtextextended('wg-fleet-ranges:' || $1, 0))";

    /// <summary>
    /// Writers that insert ranges queue here first (a transaction-level advisory lock per fleet, released at commit).
    /// Without it, writers inserting overlapping ranges at the same moment each found the other's uncommitted row in
    /// the exclusion constraint and waited for it: a deadlock PostgreSQL breaks only after deadlock_timeout (1 s),
    /// and with eight writers the retries met again, until writes failed with RegistryConflict after ~50 s
    /// (PostgresFleetConcurrencyTests). Writes that insert no range (renames, keys, limits, removals) do not take
    /// it, so they still run side by side; adds and range changes of one fleet are serialised as they were before
    /// the exclusion constraint, which stays the guarantee.
    /// </summary>
    private void LockRanges(NpgsqlBatch b) => Command(b, RangesLockSql, Fleet);

    /// <summary>The ranges lock at once, in <paramref name="tx"/> (held to its end; taking it again in the same
    /// transaction, as InsertPeer does, is a no-op).</summary>
    private void LockRanges(NpgsqlConnection c, NpgsqlTransaction tx)
    {
        using var cmd = new NpgsqlCommand(RangesLockSql, c, tx);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.ExecuteNonQuery();
    }

    /// <summary>(a): the peer's row, locked until the batch commits; its result (a row or none) is the batch's first.</summary>
    private void LockPeer(NpgsqlBatch b, string key) =>
        Command(b, "SELECT 1 FROM peers WHERE fleet = $1 AND public_key = $2 FOR UPDATE", Fleet, key);

    /// <summary>How often a write that lost a deadlock (40P01) is run again before it fails with RegistryConflict.</summary>
    private const int DeadlockAttempts = 10;

    /// <summary>Runs one write batch (one implicit transaction) and reads its results. A deadlock (40P01, see the
    /// top of this file) changed nothing and is run again after a short random pause, so that the writers that met
    /// do not meet again in step; after <see cref="DeadlockAttempts"/> it is RegistryConflict (never a raw database
    /// error). The other failures are the caller's.</summary>
    private T Batch<T>(NpgsqlConnection c, Action<NpgsqlBatch> build, Func<NpgsqlDataReader, T> read)
    {
        for (int attempt = 1; ; attempt++)
        {
            using var batch = new NpgsqlBatch(c);
            build(batch);
            try
            {
                using var r = batch.ExecuteReader();
                return read(r);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DeadlockDetected)
            {
                if (attempt >= DeadlockAttempts)
                    throw new WgException(WgErrorKind.InvalidOperation, "RegistryConflict",
                        $"Concurrent writes to fleet '{Fleet}' kept conflicting ({attempt} attempts); nothing was changed. Try again.");
                Thread.Sleep(Random.Shared.Next(1, 4 * attempt));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.NotNullViolation && e.ColumnName == "row_version") { throw FleetGone(c); }
        }
    }

    private static NpgsqlBatchCommand Command(NpgsqlBatch b, string sql, params object[] values)
    {
#pragma warning disable CA2100 // the SQL texts are constants of this file
        var cmd = new NpgsqlBatchCommand(sql);
#pragma warning restore CA2100
        foreach (var v in values) cmd.Parameters.Add(new NpgsqlParameter { Value = v });
        b.BatchCommands.Add(cmd);
        return cmd;
    }

    /// <summary>A typed parameter: a null means "not given" (coalesce keeps the row's value), so its type must be explicit.</summary>
    private static void Param(NpgsqlBatchCommand cmd, NpgsqlDbType type, object? value) =>
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = type, Value = value ?? DBNull.Value });

    private static bool IsAllocationConflict(PostgresException e) =>
        e.SqlState == PostgresErrorCodes.ExclusionViolation ||
        e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName?.Contains("allocations", StringComparison.Ordinal) == true;

    /// <summary>AllowedIPsOverlap, naming the holder of a range that overlaps (read after the failed write; the write changed nothing).</summary>
    private WgException Overlap(NpgsqlConnection c, WgKey key, List<IpPrefix> allowed)
    {
        using var cmd = new NpgsqlCommand("""
            SELECT p::text, a.public_key FROM unnest($2::cidr[]) AS p
            JOIN address_allocations a ON a.fleet = $1 AND a.prefix && p AND coalesce(a.public_key, '') <> $3
            LIMIT 1
            """, c);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.Parameters.AddWithValue(Cidrs(allowed));
        cmd.Parameters.AddWithValue(key.ToBase64());
        using var r = cmd.ExecuteReader();
        if (!r.Read())
            return new WgException(WgErrorKind.InvalidArgument, "AllowedIPsOverlap", $"The AllowedIPs of {key} overlap another peer's in fleet '{Fleet}'.");
        string who = r.IsDBNull(1) ? "the gateway's own address" : $"peer {ShortKey(r.GetString(1))}";
        return new WgException(WgErrorKind.InvalidArgument, "AllowedIPsOverlap", $"AllowedIPs {r.GetString(0)} overlaps {who} in fleet '{Fleet}'.");
    }

    /// <summary>The guard failed (no version bump): the fleet is gone or its secret is not this registry's. ReadFleet says which.</summary>
    private WgException FleetGone(NpgsqlConnection c)
    {
        _identity = null;
        ReadFleet(c, null);
        return new WgException(WgErrorKind.InvalidOperation, "RegistryConflict", $"Fleet '{Fleet}' changed while writing; nothing was changed. Try again.");
    }

    /// <summary>A candidate host address from each of the fleet's prefixes: the one after the highest taken when
    /// usable, else (or with <paramref name="walkGaps"/>) the first gap. Read outside the write: the exclusion
    /// constraint, not this read, is what makes the address the writer's alone (a lost race is tried again).</summary>
    private List<IpPrefix> Allocate(NpgsqlConnection c, FleetInfo fleet, bool walkGaps)
    {
        var highest = new IPNetwork?[fleet.Addresses.Count];
        if (!walkGaps)
        {
            using var batch = new NpgsqlBatch(c);
            foreach (var own in fleet.Addresses)
                Command(batch, "SELECT max(prefix)::cidr FROM address_allocations WHERE fleet = $1 AND prefix <<= $2", Fleet, Cidr(own.Network));
            using var r = batch.ExecuteReader();
            for (int i = 0; i < highest.Length; i++)
            {
                if (i > 0) r.NextResult();
                if (r.Read() && !r.IsDBNull(0)) highest[i] = r.GetFieldValue<IPNetwork>(0);
            }
        }
        var result = new List<IpPrefix>();
        for (int i = 0; i < fleet.Addresses.Count; i++)
        {
            var own = fleet.Addresses[i];
            var pool = own.Network;
            IPAddress? found = null;
            if (highest[i] is { } max)
            {
                var next = PoolMath.FromNumber(PoolMath.ToNumber(LastOf(new IpPrefix(max.BaseAddress, max.PrefixLength))) + 1, own.IsIPv4);
                if (next is not null && IsUsableHost(pool, next)) found = next;
            }
            found ??= FirstGap(c, own);
            result.Add(new IpPrefix(found, own.IsIPv4 ? 32 : 128));
        }
        return result;
    }

    /// <summary>The slow path: walk the taken ranges of the pool in order and take the first gap.</summary>
    private IPAddress FirstGap(NpgsqlConnection c, IpPrefix own)
    {
        var pool = own.Network;
        var taken = new List<IpPrefix>();
        using (var cmd = new NpgsqlCommand("SELECT prefix FROM address_allocations WHERE fleet = $1 AND prefix && $2 ORDER BY prefix", c))
        {
            cmd.Parameters.AddWithValue(Fleet);
            cmd.Parameters.AddWithValue(Cidr(pool));
            using var r = cmd.ExecuteReader();
            while (r.Read()) { var p = r.GetFieldValue<IPNetwork>(0); taken.Add(new IpPrefix(p.BaseAddress, p.PrefixLength)); }
        }
        var candidate = PoolMath.ToNumber(pool.Address) + 1;
        var last = PoolMath.ToNumber(LastOf(pool));
        foreach (var t in taken)
        {
            var first = PoolMath.ToNumber(t.Network.Address);
            if (candidate < first) break;
            var end = PoolMath.ToNumber(LastOf(t));
            if (end >= candidate) candidate = end + 1;
        }
        var address = candidate <= last ? PoolMath.FromNumber(candidate, own.IsIPv4) : null;
        if (address is null || !IsUsableHost(pool, address))
            throw new WgException(WgErrorKind.LimitExceeded, "AddressPoolExhausted",
                $"No free address left in {pool} in fleet '{Fleet}'; remove peers, give AllowedIPs explicitly, or use a larger prefix.");
        return address;
    }

    private static bool IsUsableHost(IpPrefix pool, IPAddress a)
    {
        if (!pool.Contains(a)) return false;
        // IPv4: neither the network nor the broadcast address of a prefix that has both.
        return !pool.IsIPv4 || pool.Bits >= 31 || !a.Equals(LastOf(pool));
    }

    private static IPAddress LastOf(IpPrefix p) => PoolMath.Last(p);

    private FleetPeer? ReadPeer(NpgsqlConnection c, NpgsqlTransaction? tx, WgKey key)
    {
        using var cmd = new NpgsqlCommand($"SELECT {PeerColumns} FROM peers WHERE fleet = $1 AND public_key = $2", c, tx);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.Parameters.AddWithValue(key.ToBase64());
        using var r = cmd.ExecuteReader();
        return r.Read() ? ReadPeer(r) : null;
    }

    private FleetPeer ReadPeer(NpgsqlDataReader r)
    {
        var key = WgKey.Parse(r.GetString(0));
        return new FleetPeer
        {
            PublicKey = key,
            Name = r.IsDBNull(1) ? null : r.GetString(1),
            AllowedIPs = r.GetFieldValue<string[]>(2).Select(IpPrefix.Parse).ToArray(),
            Endpoint = r.IsDBNull(3) ? null : r.GetString(3),
            PersistentKeepalive = r.GetInt32(4),
            Enabled = r.GetBoolean(5),
            ExpiresAt = r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6),
            Tags = r.GetFieldValue<string[]>(7),
            Acl = r.GetFieldValue<string[]>(8),
            PresharedKey = r.IsDBNull(9) ? null : _secret.Decrypt(r.GetFieldValue<byte[]>(9), key),
            RowVersion = r.GetInt64(10),
            UploadLimit = r.IsDBNull(11) ? null : new WgEngine.Policy.RateLimit(r.GetInt64(11), r.GetInt64(12)),
            DownloadLimit = r.IsDBNull(13) ? null : new WgEngine.Policy.RateLimit(r.GetInt64(13), r.GetInt64(14)),
            Quota = r.IsDBNull(15) ? null : new WgEngine.Policy.DataQuota(r.GetInt64(15), Enum.Parse<WgEngine.Policy.QuotaPeriod>(r.GetString(16))),
            QuotaEpoch = r.GetInt64(17),
        };
    }

    private static IPNetwork Cidr(IpPrefix p) => new(p.Network.Address, p.Bits);

    /// <summary>The ranges for address_allocations, sorted (family, address, length): every writer inserts its ranges
    /// in this one order, which keeps (b)'s waits from crossing in the common cases.</summary>
    private static IPNetwork[] Cidrs(List<IpPrefix> prefixes) => prefixes
        .OrderBy(p => p.IsIPv4 ? 0 : 1).ThenBy(p => PoolMath.ToNumber(p.Network.Address)).ThenBy(p => p.Bits).Select(Cidr).ToArray();

    private static List<IpPrefix> Normalize(IReadOnlyList<IpPrefix> prefixes) => prefixes.Select(p => p.Network).Distinct().ToList();

    private static string ShortKey(string base64) => base64.Length > 8 ? base64[..8] + "..." : base64;

    private WgException NotFound(WgKey key) => new(WgErrorKind.NotFound, "PeerNotFound", $"No peer with public key {key} in fleet '{Fleet}'.");

    private static void CheckName(string? name)
    {
        if (name is null) return;
        if (name.Length > VPNServer.MaxPeerNameLength || name.Any(char.IsControl))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidPeerName",
                $"A peer name has at most {VPNServer.MaxPeerNameLength} characters and no control characters.");
    }

    /// <summary>The server's rules for tags (InvalidTag), after trimming and dropping empty ones.</summary>
    private static IReadOnlyList<string> CheckTags(IReadOnlyList<string>? tags) =>
        PeerChecks.Tags((tags ?? []).Select(t => t.Trim()).Where(t => t.Length > 0).ToArray());
}
