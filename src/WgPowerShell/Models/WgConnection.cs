namespace WgPowerShell.Models;

/// <summary>This runspace's connection to a gateway host (Connect-WgServer). Never holds the token.</summary>
public sealed class WgConnection
{
    /// <summary>The unix socket's path or the HTTPS base URI.</summary>
    public required string Endpoint { get; init; }
    /// <summary>UnixSocket, Https or Fleet.</summary>
    public required string Kind { get; init; }
    /// <summary>The host's gateways when connecting.</summary>
    public string[] Servers { get; init; } = [];

    public override string ToString() => Endpoint;
}
