using System.Management.Automation;
using WgPowerShell.Models;

namespace WgPowerShell.Validation;

/// <summary>
/// Refuses anything that is not a 44-character base64 WireGuard key at parameter binding, so the error
/// is a ParameterBindingException naming the parameter and nothing runs. The value is never echoed.
/// Empty strings pass when <see cref="AllowEmpty"/> (Set-WgPeer -PresharedKey '' clears the key).
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateWgKeyAttribute : ValidateEnumeratedArgumentsAttribute
{
    public bool AllowEmpty { get; set; }

    protected override void ValidateElement(object element)
    {
        var text = element is PSObject pso ? pso.BaseObject as string : element as string;
        if (AllowEmpty && text is "") return;
        if (!Parse.IsKey(text))
            throw new ValidationMetadataException(
                "Not a valid WireGuard key: expected 44 characters of base64 that decode to exactly 32 bytes (as made by `wg genkey` or New-WgKey).");
    }
}

/// <summary>Each element is a CIDR prefix or bare address; commas split (a CSV column may hold several); empty is allowed.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateCidrAttribute : ValidateEnumeratedArgumentsAttribute
{
    protected override void ValidateElement(object element)
    {
        var text = (element is PSObject pso ? pso.BaseObject : element)?.ToString() ?? "";
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (!WgEngine.Net.IpPrefix.TryParse(part, out _))
                throw new ValidationMetadataException($"'{part}' is not an IP address or CIDR prefix (e.g. 10.8.0.2/32 or fd00:8::2/128).");
    }
}

/// <summary>An endpoint "ip:port", "[ipv6]:port" or "host:port" with a port of 1-65535.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class ValidateEndpointAttribute : ValidateArgumentsAttribute
{
    protected override void Validate(object arguments, EngineIntrinsics engineIntrinsics)
    {
        var text = (arguments is PSObject pso ? pso.BaseObject : arguments)?.ToString();
        if (string.IsNullOrEmpty(text)) return;
        if (Parse.Endpoint(text) is null && !Parse.IsHostEndpoint(text))
            throw new ValidationMetadataException($"'{text}' is not an endpoint: expected ip:port or host:port, e.g. 203.0.113.5:51820, [2001:db8::1]:51820 or vpn.example.com:51820.");
    }
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
