using WgEngine.Config;
using WgEngine.Policy;

namespace WgFleet;

/// <summary>
/// A fleet as one wg-quick file (Export-WgConfig): its addresses and port, its policy, and every peer with what the
/// registry holds of it (limits, quota and the fleet's usage, tags, rules, disabled ones commented out), so that the
/// file is a backup of the fleet and Import-WgConfig or Start-WgServer -ConfigPath turn it into a single server.
/// The private key is the fleet's identity and not in the registry: only an instance (which was given it) can add it.
/// </summary>
internal static class FleetExport
{
    public static WgConfig Build(FleetInfo fleet, FleetPolicy policy, IEnumerable<(FleetPeer Row, WgEngine.Contracts.PeerStatus Status)> peers, string? privateKey)
    {
        var i = new WgInterfaceSection { PrivateKey = privateKey, ListenPort = fleet.ListenPort };
        i.Address.AddRange(fleet.Addresses);
        if (policy.PeerIsolation) i.PeerIsolation = true;
        foreach (var (tag, rules) in policy.TagRules) i.TagRules[tag] = [.. rules.SelectMany(AclRule.Parse)];
        var config = new WgConfig { Interface = i };
        foreach (var (row, status) in peers)
        {
            var s = new WgPeerSection
            {
                PublicKey = row.PublicKey, PresharedKey = row.PresharedKey, Endpoint = row.Endpoint, PersistentKeepalive = row.PersistentKeepalive,
                Name = row.Name, Disabled = !status.Enabled, DisabledReason = status.Enabled ? null : status.DisabledReason, ExpiresAt = row.ExpiresAt,
                UploadLimit = row.UploadLimit, DownloadLimit = row.DownloadLimit, Quota = row.Quota,
                QuotaUsed = row.Quota is null ? 0 : status.QuotaUsedBytes, QuotaPeriodStart = row.Quota is null ? null : status.QuotaPeriodStart,
            };
            s.AllowedIPs.AddRange(row.AllowedIPs);
            s.Acl.AddRange(row.Acl.SelectMany(AclRule.Parse));
            s.Tags.AddRange(row.Tags);
            config.Peers.Add(s);
        }
        return config;
    }
}
