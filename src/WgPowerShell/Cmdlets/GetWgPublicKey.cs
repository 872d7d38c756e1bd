using System.Management.Automation;
using WgEngine.Crypto;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>Get-WgPublicKey: the public key of each private key piped in (or of a WgKeyPair's PrivateKey).</summary>
[Cmdlet(VerbsCommon.Get, "WgPublicKey")]
[OutputType(typeof(string))]
public sealed class GetWgPublicKeyCommand : WgCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateWgKey(Deferred = true)]   // a refused piped value would be in the error record: it is a private key
    public string[] PrivateKey { get; set; } = [];

    protected override void ProcessRecord()
    {
        if (!InputIsValid(null)) return;
        foreach (var text in PrivateKey)
        {
            using var key = WgPrivateKey.Parse(text);
            WriteObject(key.PublicKey.ToBase64());
        }
    }
}
