using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Egress;

namespace WgEngine.Gateway;

/// <summary>The userspace egress rules of a server: read, changed at runtime, persisted in the config file.</summary>
public sealed partial class VPNServer
{
    private EgressRules? _egressRules;   // what was asked for; the egress (when there is one) enforces it

    /// <summary>The in-process userspace egress (its options, policy and counters), when this server runs one.</summary>
    internal UserspaceEgress? UserspaceEgress => (_backend as UserspaceBackend)?.Egress;
    /// <summary>The userspace engine's device (a mesh attaches to its route hook); null on another backend.</summary>
    internal Device.WgDevice? UserspaceDevice => (_backend as UserspaceBackend)?.Device;

    /// <summary>The userspace egress's options and limits in force; null when this server runs no userspace egress.</summary>
    public EgressOptions? EgressOptions => UserspaceEgress?.Options;

    /// <summary>Whether the userspace egress lets peers reach <paramref name="destination"/> now, by the rules in force;
    /// null when this server runs no userspace egress.</summary>
    public bool? IsEgressAllowed(System.Net.IPAddress destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return UserspaceEgress?.Policy.IsAllowed(destination);
    }

    /// <summary>The egress rules in force (Allow exceptions, Deny, Unprotected); the defaults when none were given.</summary>
    public EgressRules EgressRules
    {
        get { lock (_lock) return _egressRules ?? (_backend as UserspaceBackend)?.Egress?.Policy.Rules ?? EgressRules.Default; }
    }

    /// <summary>
    /// Replaces the egress rules; the next packet (new flows at once) is judged by them, and the config
    /// file is rewritten. Only the in-process userspace egress enforces them: with another egress this
    /// is the error EgressRulesNotApplicable and nothing changes.
    /// </summary>
    public void SetEgressRules(EgressRules rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        lock (_lock)
        {
            EnsureRunning();
            if ((_backend as UserspaceBackend)?.Egress is not { } egress)
                throw new WgException(WgErrorKind.InvalidOperation, "EgressRulesNotApplicable",
                    $"Server '{Name}' has no userspace egress (Egress {Egress}); egress rules apply to -Egress Userspace only.");
            egress.Policy.Update(rules);
            _egressRules = rules;
            Persist();
        }
    }

    private void WriteEgressRules(WgInterfaceSection i)
    {
        var rules = _egressRules ?? (_backend as UserspaceBackend)?.Egress?.Policy.Rules;
        if (rules is null) return;
        i.EgressAllow.AddRange(rules.Allow);
        i.EgressDeny.AddRange(rules.Deny);
        i.EgressUnprotected = rules.Unprotected;
    }

    /// <summary>The options' egress settings with the config file's rules, unless the options override them.</summary>
    private static EgressOptions? EgressOptionsWithFileRules(ServerOptions options, ConfigLoad? load)
    {
        if (load?.EgressRules is not { } r || (r.Allow.Count == 0 && r.Deny.Count == 0 && !r.Unprotected)) return options.EgressOptions;
        var baseOptions = options.EgressOptions ?? new EgressOptions { TimeProvider = options.TimeProvider };
        return baseOptions with { Allow = r.Allow, Deny = r.Deny, Unprotected = r.Unprotected };
    }
}
