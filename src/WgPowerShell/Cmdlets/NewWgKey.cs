using System.Management.Automation;
using WgEngine.Crypto;
using WgPowerShell.Models;

namespace WgPowerShell.Cmdlets;

/// <summary>New-WgKey: a fresh Curve25519 key pair, like `wg genkey | tee /dev/stderr | wg pubkey`.</summary>
[Cmdlet(VerbsCommon.New, "WgKey")]
[OutputType(typeof(WgKeyPair))]
public sealed class NewWgKeyCommand : PSCmdlet
{
    protected override void EndProcessing()
    {
        using var key = WgPrivateKey.Generate();
        WriteObject(new WgKeyPair(key.ExportBase64(), key.PublicKey.ToBase64()));
    }
}
