using Npgsql;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Policy;

namespace WgFleet.Postgres;

// The fleet's traffic policy: client isolation (a column of the fleet) and tag rules (a row per tag). A change is a
// fleet version like a peer change (same row lock, same NOTIFY), and marks policy_version, so a reader that syncs
// by version learns that the policy changed and reads it whole (it is small: a flag and a few rules per tag).
public sealed partial class PostgresFleetRegistry
{
    public FleetPolicy GetPolicy() => Run(c => ReadPolicy(c, null));

    public long SetPeerIsolation(bool on) => WritePolicy((c, tx) =>
    {
        using var cmd = new NpgsqlCommand("UPDATE fleets SET peer_isolation = $2 WHERE name = $1", c, tx);
        cmd.Parameters.AddWithValue(Fleet);
        cmd.Parameters.AddWithValue(on);
        cmd.ExecuteNonQuery();
    });

    public long SetTagRules(string tag, IReadOnlyList<string> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        PeerChecks.Tags([tag]);
        var texts = new List<string>(rules.Count);
        foreach (var rule in rules)
        {
            if (!AclRule.TryParse(rule, out var parsed, out var error))
                throw new WgException(WgErrorKind.InvalidArgument, "InvalidAclRule", $"Rule {texts.Count + 1} of tag '{tag}': {error}");
            texts.AddRange(parsed.Select(p => p.ToString()));
        }
        return WritePolicy((c, tx) =>
        {
            using (var cmd = new NpgsqlCommand("DELETE FROM tag_rules WHERE fleet = $1 AND lower(tag) = lower($2)", c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(tag);
                cmd.ExecuteNonQuery();
            }
            if (texts.Count == 0) return;
            using (var cmd = new NpgsqlCommand("INSERT INTO tag_rules (fleet, tag, rules) VALUES ($1, $2, $3)", c, tx))
            {
                cmd.Parameters.AddWithValue(Fleet);
                cmd.Parameters.AddWithValue(tag);
                cmd.Parameters.AddWithValue(texts.ToArray());
                cmd.ExecuteNonQuery();
            }
        });
    }

    private FleetPolicy ReadPolicy(NpgsqlConnection c, NpgsqlTransaction? tx)
    {
        bool isolation;
        using (var cmd = new NpgsqlCommand("SELECT peer_isolation FROM fleets WHERE name = $1", c, tx))
        {
            cmd.Parameters.AddWithValue(Fleet);
            isolation = cmd.ExecuteScalar() is bool b ? b
                : throw new WgException(WgErrorKind.NotFound, "FleetNotFound", $"No fleet named '{Fleet}' in the registry at {_where}.");
        }
        var tags = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
        using (var cmd = new NpgsqlCommand("SELECT tag, rules FROM tag_rules WHERE fleet = $1 ORDER BY tag", c, tx))
        {
            cmd.Parameters.AddWithValue(Fleet);
            using var r = cmd.ExecuteReader();
            while (r.Read()) tags[r.GetString(0)] = r.GetFieldValue<string[]>(1);
        }
        return new FleetPolicy(isolation, tags);
    }

    /// <summary>One policy write: the fleet row locked by its version bump, the change, policy_version marked, NOTIFY, commit.</summary>
    private long WritePolicy(Action<NpgsqlConnection, NpgsqlTransaction> work) => Run(c =>
    {
        using var tx = c.BeginTransaction();
        ReadFleet(c, tx);   // FleetNotFound, FleetSecretMismatch: only a holder of the secret changes the policy
        long version;
        using (var cmd = new NpgsqlCommand("UPDATE fleets SET version = version + 1, policy_version = version + 1 WHERE name = $1 RETURNING version", c, tx))
        {
            cmd.Parameters.AddWithValue(Fleet);
            version = (long)cmd.ExecuteScalar()!;
        }
        work(c, tx);
        using (var cmd = new NpgsqlCommand("SELECT pg_notify($1, $2)", c, tx))
        {
            cmd.Parameters.AddWithValue(Channel);
            cmd.Parameters.AddWithValue($"{Fleet}:{version}");
            cmd.ExecuteNonQuery();
        }
        tx.Commit();
        return version;
    });
}
