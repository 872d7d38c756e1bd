using WgEngine.Contracts;
using Npgsql;

namespace WgFleet.Postgres;

/// <summary>
/// The registry's schema as ordered migrations: each step runs in its own transaction together with the row
/// in schema_version that records it, under an advisory lock, so that instances starting at once migrate
/// exactly once and a failed step leaves the previous version intact. Steps are append-only: a change is a
/// new step, never an edit of a shipped one.
/// </summary>
internal static class Schema
{
    /// <summary>Any 64-bit number unique to this schema: serialises migrations across processes.</summary>
    private const long MigrationLock = 0x5767_466c_6565_7401;

    internal static readonly string[] Steps =
    [
        // 1: fleets, peers, address allocations, instances and their live peer state.
        """
        CREATE TABLE fleets (
            name          text PRIMARY KEY,
            public_key    text NOT NULL,
            listen_port   integer NOT NULL CHECK (listen_port BETWEEN 0 AND 65535),
            addresses     text[] NOT NULL,
            secret_check  bytea NOT NULL,
            version       bigint NOT NULL DEFAULT 0,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE peers (
            fleet         text NOT NULL REFERENCES fleets(name) ON DELETE CASCADE,
            public_key    text NOT NULL,
            name          text,
            allowed_ips   text[] NOT NULL DEFAULT '{}',
            endpoint      text,
            keepalive     integer NOT NULL DEFAULT 0,
            enabled       boolean NOT NULL DEFAULT true,
            expires_at    timestamptz,
            tags          text[] NOT NULL DEFAULT '{}',
            acl           text[] NOT NULL DEFAULT '{}',
            psk_sealed    bytea,
            row_version   bigint NOT NULL,
            PRIMARY KEY (fleet, public_key)
        );
        CREATE INDEX peers_by_version ON peers (fleet, row_version);
        CREATE TABLE removed_peers (
            fleet         text NOT NULL REFERENCES fleets(name) ON DELETE CASCADE,
            public_key    text NOT NULL,
            row_version   bigint NOT NULL,
            PRIMARY KEY (fleet, public_key)
        );
        CREATE INDEX removed_by_version ON removed_peers (fleet, row_version);
        -- One row per prefix a peer (or, with a null peer, the gateway itself) holds. UNIQUE makes a collision
        -- impossible even if two writers got past the overlap check; the check itself runs with the fleet row
        -- locked, so writers of one fleet are serialised.
        CREATE TABLE address_allocations (
            fleet         text NOT NULL REFERENCES fleets(name) ON DELETE CASCADE,
            prefix        cidr NOT NULL,
            public_key    text,
            UNIQUE (fleet, prefix)
        );
        CREATE INDEX allocations_by_peer ON address_allocations (fleet, public_key);
        CREATE TABLE instances (
            fleet         text NOT NULL REFERENCES fleets(name) ON DELETE CASCADE,
            id            text NOT NULL,
            endpoint      text,
            started_at    timestamptz NOT NULL DEFAULT now(),
            heartbeat     timestamptz NOT NULL DEFAULT now(),
            peer_count    integer NOT NULL DEFAULT 0,
            rx_bytes      bigint NOT NULL DEFAULT 0,
            tx_bytes      bigint NOT NULL DEFAULT 0,
            stopped       boolean NOT NULL DEFAULT false,
            PRIMARY KEY (fleet, id)
        );
        CREATE TABLE live_peers (
            fleet            text NOT NULL,
            instance_id      text NOT NULL,
            public_key       text NOT NULL,
            endpoint         text,
            latest_handshake timestamptz,
            rx_bytes         bigint NOT NULL DEFAULT 0,
            tx_bytes         bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (fleet, public_key, instance_id),
            FOREIGN KEY (fleet, instance_id) REFERENCES instances(fleet, id) ON DELETE CASCADE
        );
        """,
        // 2: the cross-instance hub: each instance's node key (public) and where its mesh device listens.
        """
        ALTER TABLE instances ADD COLUMN node_key text, ADD COLUMN mesh_endpoint text;
        """,
        // 3: overlapping AllowedIPs refused by the database itself, so that writers of a fleet need not be
        // serialised for the overlap check (PostgresFleetRegistry.Peers.cs). An exclusion constraint: no two
        // rows of one fleet whose prefixes overlap (inet_ops' &&), unless both are the same holder's (a peer may
        // hold nested ranges of its own, as before; the gateway's rows have no key, '' here). The `=` and `<>` on
        // text need btree_gist, a contrib extension marked trusted since PostgreSQL 13, so the database's owner
        // (CREATE privilege) may install it without being a superuser (PostgreSQL docs, "F.8 btree_gist").
        // Existing allocations never overlap (the old row lock guaranteed it), so the constraint builds on them.
        // The prefix is the index's first column: GiST splits pages by its first column, and with the fleet first
        // (one value for all rows of a fleet) the tree came out worse: measured on 98,000 /32s, building the
        // constraint on existing rows took 89 s with the fleet first and 15 s with the prefix first.
        """
        CREATE EXTENSION IF NOT EXISTS btree_gist;
        ALTER TABLE address_allocations ADD CONSTRAINT allocations_no_overlap
            EXCLUDE USING gist (prefix inet_ops WITH &&, fleet WITH =, (coalesce(public_key, '')) WITH <>);
        """,
        // 4: traffic policy in the registry: per-peer bandwidth limits (null rate = unlimited, burst 0 = the default),
        // per-peer data quotas (null bytes = none; quota_epoch grows when Enable-WgPeer starts a used-up quota afresh)
        // with each instance's usage in its live rows, the fleet's client isolation and its tag rules.
        // policy_version is the fleet version of the last policy change.
        """
        ALTER TABLE peers ADD COLUMN upload_bps bigint, ADD COLUMN upload_burst bigint NOT NULL DEFAULT 0,
            ADD COLUMN download_bps bigint, ADD COLUMN download_burst bigint NOT NULL DEFAULT 0,
            ADD COLUMN quota_bytes bigint CHECK (quota_bytes > 0), ADD COLUMN quota_period text,
            ADD COLUMN quota_epoch bigint NOT NULL DEFAULT 0;
        ALTER TABLE live_peers ADD COLUMN quota_period_start timestamptz, ADD COLUMN quota_used bigint NOT NULL DEFAULT 0,
            ADD COLUMN quota_epoch bigint NOT NULL DEFAULT 0;
        ALTER TABLE fleets ADD COLUMN peer_isolation boolean NOT NULL DEFAULT false, ADD COLUMN policy_version bigint NOT NULL DEFAULT 0;
        -- A tag's ordered rules (AclRule text). Tags compare case-insensitively, as on a single server.
        CREATE TABLE tag_rules (
            fleet         text NOT NULL REFERENCES fleets(name) ON DELETE CASCADE,
            tag           text NOT NULL,
            rules         text[] NOT NULL,
            PRIMARY KEY (fleet, tag)
        );
        CREATE UNIQUE INDEX tag_rules_by_name ON tag_rules (fleet, lower(tag));
        """,
    ];

    public static int Latest => Steps.Length;

    /// <summary>Brings the database to <see cref="Latest"/> (the tests: to <paramref name="upTo"/>); returns the version it was at.</summary>
    public static int Migrate(NpgsqlConnection connection, int upTo = int.MaxValue)
    {
        using (var tx = connection.BeginTransaction())
        {
            Exec(connection, tx, $"SELECT pg_advisory_xact_lock({MigrationLock})");
            Exec(connection, tx, "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
            tx.Commit();
        }
        int from = -1;
        for (int step = 1; step <= Math.Min(upTo, Steps.Length); step++)
        {
            using var tx = connection.BeginTransaction();
            Exec(connection, tx, $"SELECT pg_advisory_xact_lock({MigrationLock})");
            using (var cmd = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM schema_version", connection, tx))
            {
                int current = Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
                if (from < 0) from = current;
                if (current >= step) { tx.Commit(); continue; }
            }
            try { Exec(connection, tx, Steps[step - 1]); }
            catch (PostgresException e) when (!e.SqlState.StartsWith("08", StringComparison.Ordinal) && e.SqlState is not ("57P01" or "57P02" or "57P03"))
            {
                // The server's own words (e.g. extension "btree_gist" is not available / permission denied): no
                // connection string in them. The step's transaction is rolled back: the schema stays at step - 1.
                throw new WgException(WgErrorKind.InvalidOperation, "RegistryMigrationFailed",
                    $"The registry schema could not be migrated to version {step} ({e.SqlState}: {e.MessageText}); it stays at version {step - 1}." +
                    (step == 3 ? " Step 3 needs the btree_gist extension (Debian: the postgresql package ships it; CREATE privilege on the database)." : ""), e);
            }
            using (var cmd = new NpgsqlCommand("INSERT INTO schema_version (version) VALUES ($1)", connection, tx))
            {
                cmd.Parameters.AddWithValue(step);
                cmd.ExecuteNonQuery();
            }
            tx.Commit();
        }
        return Math.Max(from, 0);
    }

    private static void Exec(NpgsqlConnection c, NpgsqlTransaction tx, string sql)
    {
#pragma warning disable CA2100 // the migration steps are constants of this file
        using var cmd = new NpgsqlCommand(sql, c, tx);
#pragma warning restore CA2100
        cmd.ExecuteNonQuery();
    }
}
