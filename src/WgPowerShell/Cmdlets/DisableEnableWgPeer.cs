using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgPowerShell.Completion;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>Disable-WgPeer / Enable-WgPeer share everything but the engine call.</summary>
public abstract class SetWgPeerStateCommandBase : WgPeerCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = KeySet)]
    [ValidateWgKey]
    [ArgumentCompleter(typeof(PeerKeyCompleter))]
    public string[] PublicKey { get; set; } = [];

    /// <summary>Peers by name (wildcards): every peer whose name matches.</summary>
    [Parameter(Mandatory = true, ParameterSetName = NameSet)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PeerNameCompleter))]
    public string[] Name { get; set; } = [];

    internal const string KeySet = "PublicKey", NameSet = "Name";

    /// <summary>Outputs the peer after the change.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private protected abstract string Verb { get; }
    private protected abstract bool Apply(IGatewayServer server, WgEngine.Crypto.WgKey key);

    protected override void ProcessRecord()
    {
        var server = ResolveServer();
        if (server is null) return;
        if (ParameterSetName == KeySet && FromServerObject(nameof(PublicKey))) { WriteServerIsNotAPeer(); return; }
        foreach (var text in ParameterSetName == NameSet ? KeysNamed(server, Name) : (IEnumerable<string>)PublicKey)
        {
            var key = Parse.Key(text);
            var peer = server.GetPeerInfo(key);
            if (peer is null)
            {
                WritePeerNotFound(server, text);
                continue;
            }
            if (!ShouldProcess($"peer {Describe(peer.Name, text)} on server '{server.Name}'", Verb)) continue;
            try
            {
                bool changed = Apply(server, key);
                WriteVerbose(changed ? $"{Verb}d peer {Describe(peer.Name, text)} on '{server.Name}'."
                    : $"Peer {Describe(peer.Name, text)} on '{server.Name}' was already {Verb.ToLowerInvariant()}d.");
                if (PassThru && server.GetPeerInfo(key) is { } now) WriteObject(WgPeer.From(server.Name, now));
            }
            catch (WgException e)
            {
                WriteWgError(e, text);
            }
        }
    }
}

/// <summary>Disable-WgPeer: takes peers out of service (sessions dropped, no handshake) but keeps them,
/// their addresses and their config entry. Enable-WgPeer puts them back.</summary>
[Cmdlet(VerbsLifecycle.Disable, "WgPeer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = KeySet)]
[OutputType(typeof(WgPeer))]
public sealed class DisableWgPeerCommand : SetWgPeerStateCommandBase
{
    private protected override string Verb => "Disable";
    private protected override bool Apply(IGatewayServer server, WgEngine.Crypto.WgKey key) => server.DisablePeer(key);
}

/// <summary>Enable-WgPeer: puts disabled peers back into service; an expiry already past is cleared.</summary>
[Cmdlet(VerbsLifecycle.Enable, "WgPeer", SupportsShouldProcess = true, DefaultParameterSetName = KeySet)]
[OutputType(typeof(WgPeer))]
public sealed class EnableWgPeerCommand : SetWgPeerStateCommandBase
{
    private protected override string Verb => "Enable";
    private protected override bool Apply(IGatewayServer server, WgEngine.Crypto.WgKey key) => server.EnablePeer(key);
}
