using System.Management.Automation;
using WgPowerShell.Models;

namespace WgPowerShell.Validation;

/// <summary>
/// A check that runs in ProcessRecord (WgCmdletBase.InputIsValid) instead of at binding. For parameters
/// bound from pipeline objects that may carry secrets: when PowerShell's binder refuses a value, its error
/// record keeps the whole input object (a CSV row with its PresharedKey, a piped private key) as
/// TargetObject and in CategoryInfo. Given on the command line, a bad value is still a terminating
/// ParameterBindingException naming the parameter.
/// </summary>
public interface IDeferredValidation
{
    /// <summary>Why the value is refused (never echoing it), or null when it is fine.</summary>
    string? Problem(object? value);
}

/// <summary>Base of the validation attributes below: validates at binding, or defers to ProcessRecord.</summary>
public abstract class WgValidateAttribute : ValidateArgumentsAttribute, IDeferredValidation
{
    /// <summary>Check in ProcessRecord, not at binding (see <see cref="IDeferredValidation"/>).</summary>
    public bool Deferred { get; set; }

    protected override void Validate(object arguments, EngineIntrinsics engineIntrinsics)
    {
        if (!Deferred && Problem(arguments) is { } problem) throw new ValidationMetadataException(problem);
    }

    public string? Problem(object? value)
    {
        value = value is PSObject pso ? pso.BaseObject : value;
        if (value is System.Collections.IEnumerable list and not string)
        {
            foreach (var item in list)
                if (ElementProblem(item is PSObject p ? p.BaseObject : item) is { } problem) return problem;
            return null;
        }
        return ElementProblem(value);
    }

    private protected abstract string? ElementProblem(object? element);
}

/// <summary>
/// Refuses anything that is not a 44-character base64 WireGuard key, so the error is a
/// ParameterBindingException naming the parameter and nothing runs. The value is never echoed.
/// Empty strings pass when <see cref="AllowEmpty"/> (Set-WgPeer -PresharedKey '' clears the key).
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateWgKeyAttribute : WgValidateAttribute
{
    public bool AllowEmpty { get; set; }

    private protected override string? ElementProblem(object? element)
    {
        var text = element as string;
        if (AllowEmpty && (text is "" || element is null)) return null;
        return Parse.IsKey(text) ? null
            : "Not a valid WireGuard key: expected 44 characters of base64 that decode to exactly 32 bytes (as made by `wg genkey` or New-WgKey).";
    }
}

/// <summary>Each element is a CIDR prefix or bare address; commas split (a CSV column may hold several); empty is allowed.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateCidrAttribute : WgValidateAttribute
{
    private protected override string? ElementProblem(object? element)
    {
        var text = element?.ToString() ?? "";
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (!WgEngine.Net.IpPrefix.TryParse(part, out _))
                return $"'{part}' is not an IP address or CIDR prefix (e.g. 10.8.0.2/32 or fd00:8::2/128).";
        return null;
    }
}

/// <summary>An endpoint "ip:port", "[ipv6]:port" or "host:port" with a port of 1-65535.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateEndpointAttribute : WgValidateAttribute
{
    private protected override string? ElementProblem(object? element)
    {
        var text = element?.ToString();
        if (string.IsNullOrEmpty(text)) return null;
        return Parse.Endpoint(text) is null && !Parse.IsHostEndpoint(text)
            ? $"'{text}' is not an endpoint: expected ip:port or host:port, e.g. 203.0.113.5:51820, [2001:db8::1]:51820 or vpn.example.com:51820."
            : null;
    }
}

/// <summary>An integer in [Min, Max]. With <see cref="WgValidateAttribute.Deferred"/>, text that is no
/// integer at all binds as int.MinValue (see <see cref="LenientIntAttribute"/>) and is refused here.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateWgRangeAttribute(int min, int max) : WgValidateAttribute
{
    private protected override string? ElementProblem(object? element) =>
        element is null || (LanguagePrimitives.TryConvertTo(element, out int n) && n >= min && n <= max) ? null
            : $"Expected a whole number from {min} to {max}.";
}

/// <summary>Turns text that is no integer into int.MinValue instead of failing the binding (which would
/// put the whole input row into the error record); a deferred <see cref="ValidateWgRangeAttribute"/> refuses it.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class LenientIntAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var o = inputData is PSObject pso ? pso.BaseObject : inputData;
        if (o is null || o is int) return o;
        return LanguagePrimitives.TryConvertTo(o, out int n) ? n : int.MinValue;
    }
}

/// <summary>Turns text that is no date into DateTimeOffset.MinValue instead of failing the binding (which would
/// put the whole input row into the error record); <see cref="ValidateWgDateAttribute"/> (deferred) refuses it.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class LenientDateAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var o = inputData is PSObject pso ? pso.BaseObject : inputData;
        if (o is null || o is DateTimeOffset || (o is string s && string.IsNullOrWhiteSpace(s))) return o is string ? null : o;
        return LanguagePrimitives.TryConvertTo(o, System.Globalization.CultureInfo.InvariantCulture, out DateTimeOffset d) ? d : DateTimeOffset.MinValue;
    }
}

/// <summary>Refuses the marker <see cref="LenientDateAttribute"/> leaves for text that is no date.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateWgDateAttribute : WgValidateAttribute
{
    private protected override string? ElementProblem(object? element) =>
        element is DateTimeOffset d && d == DateTimeOffset.MinValue ? "Expected a date and time, e.g. 2030-01-31T18:00:00Z." : null;
}

/// <summary>-Server/-Name take names or WgServer objects (also in arrays); all become names.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ServerNameTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var o = inputData is PSObject pso ? pso.BaseObject : inputData;
        if (o is WgServer s) return s.Name;
        if (o is object[] arr) return arr.Select(x => (x is PSObject p ? p.BaseObject : x) is WgServer w ? w.Name : x).ToArray();
        return o;
    }
}
