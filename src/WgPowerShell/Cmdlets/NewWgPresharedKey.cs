using System.Management.Automation;
using System.Security.Cryptography;

namespace WgPowerShell.Cmdlets;

/// <summary>New-WgPresharedKey: 32 random bytes in base64, like `wg genpsk`.</summary>
[Cmdlet(VerbsCommon.New, "WgPresharedKey")]
[OutputType(typeof(string))]
public sealed class NewWgPresharedKeyCommand : PSCmdlet
{
    protected override void EndProcessing()
    {
        Span<byte> b = stackalloc byte[32];
        RandomNumberGenerator.Fill(b);
        WriteObject(Convert.ToBase64String(b));
        b.Clear();
    }
}
