using System.Net;
using Npgsql;
using NpgsqlTypes;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgFleet.Postgres;

// Peer writes: each one transaction with the fleet row locked (FOR UPDATE through the version bump), the
// same checks as VPNServer (name, gateway key, overlaps, pool allocation), a NOTIFY on commit.
public sealed partial class PostgresFleetRegistry
{
    private const string PeerColumns = "public_key, name, allowed_ips, endpoint, keepalive, enabled, expires_at, tags, acl, psk_sealed, row_version, upload_bps, upload_burst, download_bps, download_burst, quota_bytes, quota_period, quota_epoch";

    public FleetPeer AddPeer(PeerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        CheckName(spec.Name);
        var tags = CheckTags(spec.Tags);
        var upload = PeerChecks.Limit(spec.UploadLimit);
        var download = PeerChecks.Limit(spec.DownloadLimit);
        var quota = PeerChecks.Quota(spec.Quota);
        return Write<FleetPeer>(spec.PublicKey, (c, tx, fleet, version) =>
        {
            if (spec.PublicKey == fleet.PublicKey)
                throw new WgException(WgErrorKind.InvalidArgument, "PeerIsGateway", $"Key {spec.PublicKey} is fleet '{Fleet}''s own public key, not a peer's.");
            using (var cmd = new NpgsqlCommand("SELECT 1 FROM peers WHERE fleet = $1 AND public_key = $2", c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(spec.PublicKey.ToBase64());
                if (cmd.ExecuteScalar() is not null)
                    throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists", $"A peer with public key {spec.PublicKey} already exists in fleet '{Fleet}'.");
            }
            IReadOnlyList<IpPrefix> allowed = spec.AllowedIPs is { Count: > 0 } given ? Normalize(given) : Allocate(c, tx, fleet);
            Claim(c, tx, spec.PublicKey, allowed);
            using (var cmd = new NpgsqlCommand($"""
                INSERT INTO peers (fleet, public_key, name, allowed_ips, endpoint, keepalive, enabled, expires_at, tags, acl, psk_sealed, row_version)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                """, c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(spec.PublicKey.ToBase64());
                cmd.Parameters.AddWithValue((object?)spec.Name ?? DBNull.Value);
                cmd.Parameters.AddWithValue(allowed.Select(p => p.ToString()).ToArray());
                cmd.Parameters.AddWithValue((object?)(spec.EndpointText ?? spec.Endpoint?.ToString()) ?? DBNull.Value);
                cmd.Parameters.AddWithValue(spec.PersistentKeepalive);
                cmd.Parameters.AddWithValue(!spec.Disabled);
                cmd.Parameters.AddWithValue(NpgsqlDbType.TimestampTz, (object?)spec.ExpiresAt ?? DBNull.Value);
                cmd.Parameters.AddWithValue(tags.ToArray());
                cmd.Parameters.AddWithValue((spec.Acl ?? []).Select(a => a.ToString()).ToArray());
                cmd.Parameters.AddWithValue(NpgsqlDbType.Bytea, spec.PresharedKey is { } psk ? _secret.Encrypt(psk, spec.PublicKey) : DBNull.Value);
                cmd.Parameters.AddWithValue(version);
                cmd.ExecuteNonQuery();
            }
            using (var cmd = new NpgsqlCommand("DELETE FROM removed_peers WHERE fleet = $1 AND public_key = $2", c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(spec.PublicKey.ToBase64());
                cmd.ExecuteNonQuery();
            }
            if (upload is not null || download is not null || quota is not null) WriteLimits(c, tx, spec.PublicKey, upload, download, quota);
            return ReadPeer(c, tx, spec.PublicKey)!;
        });
    }

    public FleetPeer UpdatePeer(WgKey publicKey, PeerUpdate changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        CheckName(changes.Name);
        var tags = changes.Tags is null ? null : CheckTags(changes.Tags);
        // A rate of 0 removes a limit (as on a single server).
        var upload = changes.UploadLimit is { BitsPerSecond: not 0 } up ? PeerChecks.Limit(up) : null;
        var download = changes.DownloadLimit is { BitsPerSecond: not 0 } down ? PeerChecks.Limit(down) : null;
        var quota = changes.Quota is { Bytes: not 0 } q ? PeerChecks.Quota(q) : null;   // 0 bytes removes it
        return Write<FleetPeer>(publicKey, (c, tx, fleet, version) =>
        {
            var old = ReadPeer(c, tx, publicKey) ?? throw NotFound(publicKey);
            var allowed = old.AllowedIPs;
            if (changes.AllowedIPs is not null)
            {
                allowed = Normalize(changes.AllowedIPs);
                Release(c, tx, publicKey);
                Claim(c, tx, publicKey, allowed);
            }
            byte[]? sealedPsk = changes.ClearPresharedKey ? null
                : changes.PresharedKey is { } psk ? _secret.Encrypt(psk, publicKey)
                : old.PresharedKey is { } kept ? _secret.Encrypt(kept, publicKey) : null;
            using var cmd = new NpgsqlCommand("""
                UPDATE peers SET name = $3, allowed_ips = $4, endpoint = $5, keepalive = $6, expires_at = $7, tags = $8, acl = $9, psk_sealed = $10, row_version = $11
                WHERE fleet = $1 AND public_key = $2
                """, c, tx);
            cmd.Parameters.AddWithValue(Fleet);
            cmd.Parameters.AddWithValue(publicKey.ToBase64());
            cmd.Parameters.AddWithValue((object?)(changes.Name ?? old.Name) ?? DBNull.Value);
            cmd.Parameters.AddWithValue(allowed.Select(p => p.ToString()).ToArray());
            cmd.Parameters.AddWithValue((object?)(changes.EndpointText ?? changes.Endpoint?.ToString() ?? old.Endpoint) ?? DBNull.Value);
            cmd.Parameters.AddWithValue(changes.PersistentKeepalive ?? old.PersistentKeepalive);
            cmd.Parameters.AddWithValue(NpgsqlDbType.TimestampTz, (object?)(changes.ClearExpiresAt ? null : changes.ExpiresAt ?? old.ExpiresAt) ?? DBNull.Value);
            cmd.Parameters.AddWithValue((tags ?? old.Tags).ToArray());
            cmd.Parameters.AddWithValue((changes.Acl?.Select(a => a.ToString()) ?? old.Acl).ToArray());
            cmd.Parameters.AddWithValue(NpgsqlDbType.Bytea, (object?)sealedPsk ?? DBNull.Value);
            cmd.Parameters.AddWithValue(version);
            cmd.ExecuteNonQuery();
            if (changes.UploadLimit is not null || changes.DownloadLimit is not null || changes.Quota is not null)
                WriteLimits(c, tx, publicKey, changes.UploadLimit is null ? old.UploadLimit : upload, changes.DownloadLimit is null ? old.DownloadLimit : download,
                    changes.Quota is null ? old.Quota : quota);
            return ReadPeer(c, tx, publicKey)!;
        });
    }

    public bool RemovePeer(WgKey publicKey)
    {
        try
        {
            return Write(publicKey, (c, tx, fleet, version) =>
            {
                using (var cmd = new NpgsqlCommand("DELETE FROM peers WHERE fleet = $1 AND public_key = $2", c, tx))
                {
                    cmd.Parameters.AddWithValue(Fleet);
                    cmd.Parameters.AddWithValue(publicKey.ToBase64());
                    if (cmd.ExecuteNonQuery() == 0) throw NotFound(publicKey);   // rolls the version bump back
                }
                Release(c, tx, publicKey);
                using (var cmd = new NpgsqlCommand("""
                    INSERT INTO removed_peers (fleet, public_key, row_version) VALUES ($1, $2, $3)
                    ON CONFLICT (fleet, public_key) DO UPDATE SET row_version = EXCLUDED.row_version
                    """, c, tx))
                {
                    cmd.Parameters.AddWithValue(Fleet);
                    cmd.Parameters.AddWithValue(publicKey.ToBase64());
                    cmd.Parameters.AddWithValue(version);
                    cmd.ExecuteNonQuery();
                }
                return true;
            });
        }
        catch (WgException e) when (e.ErrorId == "PeerNotFound") { return false; }
    }

    public bool SetEnabled(WgKey publicKey, bool enabled)
    {
        var old = Run(c => ReadPeer(c, null, publicKey)) ?? throw NotFound(publicKey);
        if (old.Enabled == enabled) return false;
        return Write(publicKey, (c, tx, fleet, version) =>
        {
            using var cmd = new NpgsqlCommand("UPDATE peers SET enabled = $3, row_version = $4 WHERE fleet = $1 AND public_key = $2 AND enabled <> $3", c, tx);
            cmd.Parameters.AddWithValue(Fleet);
            cmd.Parameters.AddWithValue(publicKey.ToBase64());
            cmd.Parameters.AddWithValue(enabled);
            cmd.Parameters.AddWithValue(version);
            return cmd.ExecuteNonQuery() > 0 ? true : throw new NoChange();
        }, noChangeResult: false);
    }

    private sealed class NoChange : Exception;

    /// <summary>One peer write: lock the fleet and take the next version, run, notify, commit. Any failure rolls all of it back.</summary>
    private T Write<T>(WgKey key, Func<NpgsqlConnection, NpgsqlTransaction, FleetInfo, long, T> work, T noChangeResult = default!) => Run(c =>
    {
        using var tx = c.BeginTransaction();
        var fleet = ReadFleet(c, tx);
        long version;
        using (var cmd = new NpgsqlCommand("UPDATE fleets SET version = version + 1 WHERE name = $1 RETURNING version", c, tx))
        {
            cmd.Parameters.AddWithValue(Fleet);
            version = (long)cmd.ExecuteScalar()!;
        }
        T result;
        try { result = work(c, tx, fleet, version); }
        catch (NoChange) { tx.Rollback(); return noChangeResult; }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName?.Contains("allocations", StringComparison.Ordinal) == true)
        {
            throw new WgException(WgErrorKind.InvalidArgument, "AllowedIPsOverlap", $"The AllowedIPs of {key} overlap another peer's in fleet '{Fleet}'.");
        }
        using (var cmd = new NpgsqlCommand("SELECT pg_notify($1, $2)", c, tx))
        {
            cmd.Parameters.AddWithValue(Channel);
            cmd.Parameters.AddWithValue($"{Fleet}:{version}");
            cmd.ExecuteNonQuery();
        }
        tx.Commit();
        return result;
    });

    /// <summary>One host address from each of the fleet's prefixes: the one after the highest taken when free, else the first gap.</summary>
    private List<IpPrefix> Allocate(NpgsqlConnection c, NpgsqlTransaction tx, FleetInfo fleet)
    {
        var result = new List<IpPrefix>();
        foreach (var own in fleet.Addresses)
        {
            var pool = own.Network;
            int hostBits = own.IsIPv4 ? 32 : 128;
            IPAddress? found = null;
            using (var cmd = new NpgsqlCommand("SELECT max(prefix)::cidr FROM address_allocations WHERE fleet = $1 AND prefix <<= $2", c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(Cidr(pool));
                if (cmd.ExecuteScalar() is IPNetwork max)
                {
                    var next = PoolMath.FromNumber(PoolMath.ToNumber(LastOf(new IpPrefix(max.BaseAddress, max.PrefixLength))) + 1, own.IsIPv4);
                    if (next is not null && IsUsableHost(pool, next) && !Overlaps(c, tx, new IpPrefix(next, hostBits))) found = next;
                }
            }
            if (found is null)
            {
                // The slow path: walk the taken ranges in order and take the first gap.
                var taken = new List<IpPrefix>();
                using (var cmd = new NpgsqlCommand("SELECT prefix FROM address_allocations WHERE fleet = $1 AND prefix && $2 ORDER BY prefix", c, tx))
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
                found = address;
            }
            result.Add(new IpPrefix(found, hostBits));
        }
        return result;
    }

    private static bool IsUsableHost(IpPrefix pool, IPAddress a)
    {
        if (!pool.Contains(a)) return false;
        // IPv4: neither the network nor the broadcast address of a prefix that has both.
        return !pool.IsIPv4 || pool.Bits >= 31 || !a.Equals(LastOf(pool));
    }

    private static IPAddress LastOf(IpPrefix p) => PoolMath.Last(p);

    private bool Overlaps(NpgsqlConnection c, NpgsqlTransaction tx, IpPrefix p)
    {
        using var cmd = new NpgsqlCommand("SELECT 1 FROM address_allocations WHERE fleet = $1 AND prefix && $2 LIMIT 1", c, tx);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.Parameters.AddWithValue(Cidr(p));
        return cmd.ExecuteScalar() is not null;
    }

    /// <summary>Records the peer's ranges; AllowedIPsOverlap (nothing written) when one overlaps another peer's or the gateway's.</summary>
    private void Claim(NpgsqlConnection c, NpgsqlTransaction tx, WgKey key, IReadOnlyList<IpPrefix> allowed)
    {
        foreach (var p in allowed)
        {
            using (var cmd = new NpgsqlCommand("SELECT public_key FROM address_allocations WHERE fleet = $1 AND prefix && $2 AND public_key IS DISTINCT FROM $3 LIMIT 1", c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(Cidr(p));
                cmd.Parameters.AddWithValue(key.ToBase64());
                using var r = cmd.ExecuteReader();
                if (r.Read())
                {
                    string who = r.IsDBNull(0) ? "the gateway's own address" : $"peer {ShortKey(r.GetString(0))}";
                    throw new WgException(WgErrorKind.InvalidArgument, "AllowedIPsOverlap", $"AllowedIPs {p} overlaps {who} in fleet '{Fleet}'.");
                }
            }
            using (var cmd = new NpgsqlCommand("INSERT INTO address_allocations (fleet, prefix, public_key) VALUES ($1, $2, $3)", c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(Cidr(p));
                cmd.Parameters.AddWithValue(key.ToBase64());
                cmd.ExecuteNonQuery();
            }
        }
    }

    private void Release(NpgsqlConnection c, NpgsqlTransaction tx, WgKey key)
    {
        using var cmd = new NpgsqlCommand("DELETE FROM address_allocations WHERE fleet = $1 AND public_key = $2", c, tx);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.Parameters.AddWithValue(key.ToBase64());
        cmd.ExecuteNonQuery();
    }

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

    /// <summary>A peer's bandwidth limits and quota, in the transaction of its write (only when it has or changes one, so a plain write costs no more).</summary>
    private void WriteLimits(NpgsqlConnection c, NpgsqlTransaction tx, WgKey key, WgEngine.Policy.RateLimit? upload, WgEngine.Policy.RateLimit? download,
        WgEngine.Policy.DataQuota? quota)
    {
        using var cmd = new NpgsqlCommand(
            "UPDATE peers SET upload_bps = $3, upload_burst = $4, download_bps = $5, download_burst = $6, quota_bytes = $7, quota_period = $8 WHERE fleet = $1 AND public_key = $2", c, tx);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.Parameters.AddWithValue(key.ToBase64());
        cmd.Parameters.AddWithValue(NpgsqlDbType.Bigint, (object?)upload?.BitsPerSecond ?? DBNull.Value);
        cmd.Parameters.AddWithValue(upload?.BurstBytes ?? 0L);
        cmd.Parameters.AddWithValue(NpgsqlDbType.Bigint, (object?)download?.BitsPerSecond ?? DBNull.Value);
        cmd.Parameters.AddWithValue(download?.BurstBytes ?? 0L);
        cmd.Parameters.AddWithValue(NpgsqlDbType.Bigint, (object?)quota?.Bytes ?? DBNull.Value);
        cmd.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)quota?.Period.ToString() ?? DBNull.Value);
        cmd.ExecuteNonQuery();
    }

    public void ResetQuota(WgKey publicKey) => Write(publicKey, (c, tx, fleet, version) =>
    {
        using var cmd = new NpgsqlCommand("UPDATE peers SET quota_epoch = quota_epoch + 1, row_version = $3 WHERE fleet = $1 AND public_key = $2", c, tx);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.Parameters.AddWithValue(publicKey.ToBase64());
        cmd.Parameters.AddWithValue(version);
        return cmd.ExecuteNonQuery() > 0 ? 0 : throw NotFound(publicKey);   // rolls the version bump back
    });
}
