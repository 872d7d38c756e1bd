using System.Management.Automation;
using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgPowerShell.Models;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Import-WgConfig: adds the [Peer] sections of wg-quick or `wg showconf` text to a server (the
/// [Interface] section is not applied). Names, disabled state and expiry come from this module's
/// extension comments. A peer that fails (duplicate key, overlap) is a non-terminating error; the
/// others still go in. Outputs the added peers, after they are on disk when the server persists.
/// </summary>
[Cmdlet(VerbsData.Import, "WgConfig", SupportsShouldProcess = true, DefaultParameterSetName = PathSet)]
[OutputType(typeof(WgPeer))]
public sealed class ImportWgConfigCommand : WgPeerCmdletBase
{
    private const string PathSet = "Path";
    private const string ContentSet = "Content";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>The config text itself (e.g. from Get-Content -Raw or `wg showconf`).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ContentSet, ValueFromPipeline = true)]
    [AllowEmptyString]
    public string Content { get; set; } = "";

    private readonly PeerBatch _batch = new();

    protected override void ProcessRecord()
    {
        var server = ResolveServer();
        if (server is null) return;
        string source = ParameterSetName == PathSet ? GetUnresolvedProviderPathFromPSPath(Path) : "-Content";
        WgConfig config;
        try
        {
            config = ParameterSetName == PathSet ? WgConfigParser.ParseFile(source) : WgConfigParser.Parse(Content, source);
        }
        catch (WgException e)
        {
            WriteWgError(e, source);
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError(new ErrorRecord(e, "ConfigReadFailed", ErrorCategory.ReadError, source));
            return;
        }
        foreach (var peer in config.Peers)
        {
            var key = peer.PublicKey.ToBase64();
            var state = peer.Disabled ? ", disabled" : "";
            if (!ShouldProcess($"peer {Describe(peer.Name, key)} ({string.Join(", ", peer.AllowedIPs)}{state}) on server '{server.Name}'", "Import"))
                continue;
            _batch.Add(this, server, VPNServer.ToSpec(peer), key, allocateWhenEmpty: false);
        }
    }

    protected override void EndProcessing() => _batch.Flush(this);
}
