namespace WgPowerShell.Models;

/// <summary>Output of New-WgKey: base64 keys as `wg genkey` / `wg pubkey` print them.</summary>
public sealed class WgKeyPair
{
    public WgKeyPair(string privateKey, string publicKey) { PrivateKey = privateKey; PublicKey = publicKey; }
    public string PrivateKey { get; }
    public string PublicKey { get; }
    /// <summary>Never the private key, so that string interpolation cannot leak it.</summary>
    public override string ToString() => PublicKey;
}
