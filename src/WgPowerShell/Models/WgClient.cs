namespace WgPowerShell.Models;

/// <summary>
/// Output of New-WgClient: the client's side of a new peer. <see cref="Config"/> is the only place the
/// client's private key exists (the gateway keeps just the public key); the default views leave it out.
/// </summary>
public sealed class WgClient
{
    public required string Server { get; init; }
    public required string Name { get; init; }
    public required string PublicKey { get; init; }
    /// <summary>The client's tunnel addresses (what the gateway allocated, as AllowedIPs on its side).</summary>
    public string[] Address { get; init; } = [];
    /// <summary>"host:port" the client dials.</summary>
    public required string Endpoint { get; init; }
    public string[] DNS { get; init; } = [];
    /// <summary>What the client routes into the tunnel (0.0.0.0/0, ::/0 for a full tunnel).</summary>
    public string[] AllowedIPs { get; init; } = [];
    public int PersistentKeepalive { get; init; }
    public bool HasPresharedKey { get; init; }
    /// <summary>The complete wg-quick file for the client, private key included: hand it over, then drop it.</summary>
    public required string Config { get; init; }

    /// <summary>Never the config, so that interpolation cannot leak the private key.</summary>
    public override string ToString() => Name;
}
