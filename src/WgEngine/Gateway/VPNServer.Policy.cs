using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Policy;

namespace WgEngine.Gateway;

/// <summary>
/// Client isolation, tags and per-peer/per-tag ACLs of a server (the device's <see cref="TrafficPolicy"/>
/// enforces them for the hub, the userspace egress and the TUN alike), persisted in the config file.
/// </summary>
public sealed partial class VPNServer
{
    private bool _peerIsolation;
    private Dictionary<string, IReadOnlyList<AclRule>> _tagRules = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The device's policy; null when the backend enforces none (an external device).</summary>
    private TrafficPolicy? DevicePolicy => (_backend as UserspaceBackend)?.Device.Policy;

    /// <summary>Client isolation: peers do not reach each other through the hub unless a rule of the sender allows it.</summary>
    public bool PeerIsolation
    {
        get { lock (_lock) return _peerIsolation; }
    }

    /// <summary>The ordered rules of every tag.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<AclRule>> TagRules
    {
        get { lock (_lock) return new Dictionary<string, IReadOnlyList<AclRule>>(_tagRules, StringComparer.OrdinalIgnoreCase); }
    }

    /// <summary>The policy's counters: packets refused, replies of allowed flows let through; zero without a policy.</summary>
    public (long Denied, long RepliesAllowed) PolicyCounters => DevicePolicy is { } p ? (p.Denied, p.RepliesAllowed) : (0, 0);

    /// <summary>Turns client isolation on or off for the next packet; persisted.</summary>
    public void SetPeerIsolation(bool on)
    {
        lock (_lock)
        {
            EnsureRunning();
            EnsurePolicy().PeerIsolation = on;
            _peerIsolation = on;
            Persist();
        }
    }

    /// <summary>Sets a tag's ordered rules (empty removes them); every peer carrying the tag follows them from the next packet. Persisted.</summary>
    public void SetTagRules(string tag, IReadOnlyList<AclRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        CheckTags([tag]);
        lock (_lock)
        {
            EnsureRunning();
            EnsurePolicy();
            ((UserspaceBackend)_backend).Device.SetTagRules(tag, rules);
            if (rules.Count == 0) _tagRules.Remove(tag);
            else _tagRules[tag] = [.. rules];
            Persist();
        }
    }

    private static IReadOnlyList<string> CheckTags(IReadOnlyList<string>? tags) => PeerChecks.Tags(tags);
    private static Policy.RateLimit? CheckLimit(Policy.RateLimit? limit) => PeerChecks.Limit(limit);

    /// <summary>The device's policy; an error when this backend cannot enforce one.</summary>
    private TrafficPolicy EnsurePolicy() => DevicePolicy ?? throw new WgException(WgErrorKind.InvalidOperation, "PolicyNotApplicable",
        $"Server '{Name}' runs an external device (Backend {BackendKind}); isolation, tags and ACLs are enforced by the in-process engine only.");

    /// <summary>Takes the start settings (options or file) as the server's own.</summary>
    private void InitPolicy(InterfaceConfig config)
    {
        _peerIsolation = config.PeerIsolation;
        if (config.TagRules is { } t)
            foreach (var (tag, rules) in t) _tagRules[tag] = rules;
    }

    private void WritePolicy(WgInterfaceSection i)
    {
        if (_peerIsolation) i.PeerIsolation = true;
        foreach (var (tag, rules) in _tagRules) i.TagRules[tag] = [.. rules];
    }
}
