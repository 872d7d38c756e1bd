using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Config;

/// <summary>
/// A wg-quick configuration file: one [Interface] and any number of [Peer] sections, plus this
/// module's per-peer extension (name, disabled, expiry) kept in comments that wg-quick ignores.
/// The format is described in docs/config-file.md.
/// </summary>
public sealed class WgConfig
{
    public WgInterfaceSection Interface { get; set; } = new();
    public List<WgPeerSection> Peers { get; } = new();
}

/// <summary>The [Interface] section. Keys wg(8) and wg-quick know are typed; all others are kept verbatim.</summary>
public sealed class WgInterfaceSection
{
    /// <summary>Base64 as written in the file; null when absent. Never printed: ToString leaves it out.</summary>
    public string? PrivateKey { get; set; }
    public int? ListenPort { get; set; }
    /// <summary>0 means off / absent.</summary>
    public uint FwMark { get; set; }
    /// <summary>wg-quick only: the interface's own addresses (host bits kept, e.g. 10.8.0.1/24).</summary>
    public List<IpPrefix> Address { get; } = new();
    /// <summary>wg-quick only: DNS servers or search domains, as text.</summary>
    public List<string> Dns { get; } = new();
    public int? Mtu { get; set; }
    /// <summary>Table, PreUp, PostUp, PreDown, PostDown, SaveConfig and unknown keys, verbatim and in file order.</summary>
    public List<KeyValuePair<string, string>> Extra { get; } = new();
    /// <summary>1-based line of the [Interface] header (0 when built in code); not part of the content.</summary>
    public int Line { get; set; }

    // Extension (comment lines "#! Key = value", ignored by wg-quick): the userspace egress rules.
    public List<IpPrefix> EgressAllow { get; } = new();
    public List<IpPrefix> EgressDeny { get; } = new();
    public bool EgressUnprotected { get; set; }
    /// <summary>Client isolation ("#! PeerIsolation = true"); null when the file does not say.</summary>
    public bool? PeerIsolation { get; set; }
    /// <summary>Each tag's ordered rules ("#! TagAcl = tag: rule", one line per rule).</summary>
    public Dictionary<string, List<Policy.AclRule>> TagRules { get; } = new(StringComparer.OrdinalIgnoreCase);

    public override string ToString() => $"[Interface] ListenPort={ListenPort} Address={string.Join(", ", Address)}";
}

/// <summary>A [Peer] section with this module's extension fields.</summary>
public sealed class WgPeerSection
{
    public WgKey PublicKey { get; set; }
    public WgKey? PresharedKey { get; set; }
    public List<IpPrefix> AllowedIPs { get; } = new();
    /// <summary>Text as given ("host:port", "1.2.3.4:51820", "[::1]:51820"): a hostname stays a hostname.</summary>
    public string? Endpoint { get; set; }
    /// <summary>Seconds; 0 = off.</summary>
    public int PersistentKeepalive { get; set; }
    /// <summary>Unknown keys of this section, verbatim and in order.</summary>
    public List<KeyValuePair<string, string>> Extra { get; } = new();

    // Extension (comment lines "#! Key = value"; a disabled section is written with every line prefixed "#~ ").
    public string? Name { get; set; }
    public bool Disabled { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    /// <summary>"#! Acl = rule", one line per rule, in order.</summary>
    public List<Policy.AclRule> Acl { get; } = new();
    /// <summary>"#! Tags = a, b".</summary>
    public List<string> Tags { get; } = new();
    /// <summary>"#! UploadLimit = &lt;bit/s&gt; [&lt;burst bytes&gt;]" (what the peer sends).</summary>
    public Policy.RateLimit? UploadLimit { get; set; }
    /// <summary>"#! DownloadLimit = &lt;bit/s&gt; [&lt;burst bytes&gt;]" (what the peer receives).</summary>
    public Policy.RateLimit? DownloadLimit { get; set; }
    /// <summary>"#! Quota = &lt;bytes&gt; &lt;Total|Day|Week|Month&gt;", with "#! QuotaUsed" and "#! QuotaPeriodStart".</summary>
    public Policy.DataQuota? Quota { get; set; }
    public long QuotaUsed { get; set; }
    public DateTimeOffset? QuotaPeriodStart { get; set; }
    /// <summary>"#! DisabledReason = ..." of a disabled peer (Manual, Expired, QuotaExceeded).</summary>
    public string? DisabledReason { get; set; }

    /// <summary>1-based line of the [Peer] header (0 when built in code); not part of the content.</summary>
    public int Line { get; set; }

    public override string ToString() => $"[Peer] {PublicKey}" + (Name is null ? "" : $" '{Name}'");
}

/// <summary>Which text <see cref="WgConfigWriter"/> produces.</summary>
public enum WgConfigFormat
{
    /// <summary>Everything: wg-quick keys, hooks, the extension comments, disabled peers commented out.</summary>
    WgQuick,
    /// <summary>Only the keys wg(8) setconf accepts, laid out as `wg showconf` prints them; no disabled peers.</summary>
    ShowConf,
}
