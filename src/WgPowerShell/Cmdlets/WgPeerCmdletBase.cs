using System.Management.Automation;
using WgPowerShell.Completion;
using WgEngine.Gateway;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>The peer cmdlets: all act on one server, named by -Server or the session's only one.</summary>
public abstract class WgPeerCmdletBase : WgCmdletBase
{
    /// <summary>A server name or a WgServer object (pipeline by property name Server).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ServerNameTransformation]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    public string? Server { get; set; }

    /// <summary>The server this record acts on, or null after a non-terminating error.</summary>
    internal IGatewayServer? ResolveServer() => ResolveServer(Server);

    /// <summary>The non-terminating ObjectNotFound error every peer cmdlet gives for an unknown key.</summary>
    internal void WritePeerNotFound(IGatewayServer server, string publicKey) =>
        WriteError(new ErrorRecord(new ItemNotFoundException($"No peer with public key {publicKey} on server '{server.Name}'."),
            "PeerNotFound", ErrorCategory.ObjectNotFound, publicKey));
}
