namespace WgPowerShell.Models;

/// <summary>A fleet as New-WgFleet creates it: its identity (public key only), port and addresses.</summary>
public sealed class WgFleetInfo
{
    public required string Name { get; init; }
    public required string PublicKey { get; init; }
    public int ListenPort { get; init; }
    public string[] Address { get; init; } = [];
    /// <summary>Host, port and database of the registry (never the password).</summary>
    public required string Registry { get; init; }

    public override string ToString() => Name;
}
