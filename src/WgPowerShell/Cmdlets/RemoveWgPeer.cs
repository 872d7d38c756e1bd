using System.Management.Automation;
using WgPowerShell.Completion;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>Remove-WgPeer: removes peers (sessions dropped at once, addresses back to the pool).</summary>
[Cmdlet(VerbsCommon.Remove, "WgPeer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
public sealed class RemoveWgPeerCommand : WgPeerCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateWgKey]
    [ArgumentCompleter(typeof(PeerKeyCompleter))]
    public string[] PublicKey { get; set; } = [];


    protected override void ProcessRecord()
    {
        var server = ResolveServer();
        if (server is null) return;
        foreach (var text in PublicKey)
        {
            var key = Parse.Key(text);
            var peer = server.GetPeerInfo(key);
            if (peer is null)
            {
                WritePeerNotFound(server, text);
                continue;
            }
            if (!ShouldProcess($"peer {Describe(peer.Name, text)} ({string.Join(", ", peer.AllowedIPs)}) on server '{server.Name}'", "Remove")) continue;
            if (server.RemovePeer(key))
                WriteVerbose($"Removed peer {Describe(peer.Name, text)} from '{server.Name}'.");
            else
                WritePeerNotFound(server, text);
        }
    }
}
