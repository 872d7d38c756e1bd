using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Policy;

namespace WgPowerShell.Validation;

/// <summary>Each element is one ACL rule, 'allow|deny &lt;CIDR|any&gt; [tcp|udp|icmp|any] [port|low-high]'; empty is allowed.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateAclAttribute : ValidateEnumeratedArgumentsAttribute
{
    protected override void ValidateElement(object element)
    {
        var text = (element is PSObject pso ? pso.BaseObject : element)?.ToString() ?? "";
        if (!AclRule.TryParse(text, out _, out var error)) throw new ValidationMetadataException(error);
    }

    /// <summary>The rules of validated elements, in order.</summary>
    internal static List<AclRule> Rules(IEnumerable<string>? items) =>
        items is null ? [] : [.. items.Where(t => !string.IsNullOrWhiteSpace(t)).SelectMany(AclRule.Parse)];
}

/// <summary>Each element is a tag: 1-32 letters, digits, '-', '_' or '.'; commas split.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateTagAttribute : ValidateEnumeratedArgumentsAttribute
{
    protected override void ValidateElement(object element)
    {
        var text = (element is PSObject pso ? pso.BaseObject : element)?.ToString() ?? "";
        foreach (var t in Split([text]))
            if (!PeerTag.IsValid(t))
                throw new ValidationMetadataException($"'{(t.Length > 40 ? t[..40] + "..." : t)}' is not a tag: 1-32 letters, digits, '-', '_' or '.'.");
    }

    internal static List<string> Split(IEnumerable<string>? items) =>
        items is null ? [] : [.. items.SelectMany(i => (i ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))];
}
