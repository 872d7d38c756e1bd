using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgPowerShell.Completion;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Remove-WgPeer: removes peers (sessions dropped at once, addresses back to the pool). Pipeline input is
/// collected and removed in one engine call per server (one config write), at the end of the pipeline or
/// every <see cref="MaxBatch"/> items: rewriting a 15,000-peer file once per piped key took half a minute.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "WgPeer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = KeySet)]
public sealed class RemoveWgPeerCommand : WgPeerCmdletBase
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

    internal const int MaxBatch = 10_000;
    private readonly List<(WgKey Key, string Text, string? Name)> _pending = new();
    private IGatewayServer? _pendingServer;

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
            if (!ShouldProcess($"peer {Describe(peer.Name, text)} ({string.Join(", ", peer.AllowedIPs)}) on server '{server.Name}'", "Remove")) continue;
            if (!ReferenceEquals(_pendingServer, server)) Commit();
            _pendingServer = server;
            _pending.Add((key, text, peer.Name));
            if (_pending.Count >= MaxBatch) Commit();
        }
    }

    protected override void EndProcessing() => Commit();

    private void Commit()
    {
        if (_pendingServer is not { } server || _pending.Count == 0) return;
        var items = _pending.ToArray();
        _pending.Clear();
        IReadOnlyList<bool> removed;
        try
        {
            removed = server.RemovePeers(items.Select(i => i.Key).ToArray());
        }
        catch (WgException e)
        {
            foreach (var item in items) WriteWgError(e, item.Text);   // in effect, not saved
            return;
        }
        for (int i = 0; i < items.Length; i++)
        {
            if (removed[i]) WriteVerbose($"Removed peer {Describe(items[i].Name, items[i].Text)} from '{server.Name}'.");
            else WritePeerNotFound(server, items[i].Text);   // removed meanwhile, or twice in this pipeline
        }
    }
}
