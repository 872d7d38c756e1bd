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

    /// <summary>
    /// A WgServer from the pipeline (`Get-WgServer x | Get-WgPeer`): the server to act on. Its other
    /// properties (PublicKey, Name) also bind by property name; <see cref="FromServerObject"/> tells the
    /// cmdlets to disregard those. Typed PSObject, not WgServer: a WgServer-typed pipeline parameter makes
    /// PowerShell try to convert every piped peer record to a WgServer, and each failed attempt leaves
    /// about 2 KB of member caches on the record (scale-peers: heap per peer 0.8 -> 3.0 KB while the
    /// records live). A PSObject parameter takes any record as it is; records that are not a WgServer
    /// are ignored, and a non-WgServer given on the command line is an error.
    /// </summary>
    [Parameter(ValueFromPipeline = true)]
    public PSObject? InputObject { get; set; }

    /// <summary>The piped (or given) WgServer, or null when the record is something else (a peer).</summary>
    internal WgPowerShell.Models.WgServer? PipedServer => InputObject?.BaseObject as WgPowerShell.Models.WgServer;

    /// <summary>True when this record is a WgServer and <paramref name="parameter"/> took its value from that
    /// server object (its PublicKey or Name), not from the command line.</summary>
    internal bool FromServerObject(string parameter) => PipedServer is not null && !CommandLine.Contains(parameter);

    /// <summary>The server this record acts on, or null after a non-terminating error.</summary>
    internal IGatewayServer? ResolveServer()
    {
        if (PipedServer is null && CommandLine.Contains(nameof(InputObject)))
        {
            WriteError(new ErrorRecord(new ArgumentException(
                    $"-InputObject takes a WgServer (from Get-WgServer or Start-WgServer), not a {InputObject?.BaseObject?.GetType().Name ?? "null"}; give -Server to name a server."),
                "InputObjectNotAServer", ErrorCategory.InvalidArgument, null));
            return null;
        }
        return ResolveServer(PipedServer is { } piped && !CommandLine.Contains(nameof(Server)) ? piped.Name : Server);
    }

    /// <summary>A WgServer piped into a cmdlet that needs a peer key: the server object's own key is not one.</summary>
    internal void WriteServerIsNotAPeer() =>
        WriteError(new ErrorRecord(new ArgumentException(
                "A WgServer from the pipeline only says which server to act on; give -PublicKey, or pipe peers (objects with a PublicKey property)."),
            "PeerKeyMissing", ErrorCategory.InvalidArgument, PipedServer?.Name));

    /// <summary>
    /// -Endpoint as an IP endpoint; a host name is resolved once, as wg-quick and config files do, and its
    /// text returned for the config file. False (after a non-terminating error) when the name does not resolve.
    /// </summary>
    internal bool TryEndpoint(string? text, out System.Net.IPEndPoint? endpoint, out string? hostText)
    {
        endpoint = Parse.Endpoint(text);
        hostText = null;
        if (endpoint is not null || string.IsNullOrWhiteSpace(text)) return true;
        hostText = text.Trim();
        endpoint = VPNServer.ResolveEndpoint(hostText);
        if (endpoint is not null) return true;
        WriteError(new ErrorRecord(new ItemNotFoundException($"Endpoint '{hostText}': the host name does not resolve."),
            "EndpointNotResolved", ErrorCategory.ObjectNotFound, hostText));
        return false;
    }

    /// <summary>
    /// The keys of the peers whose names match <paramref name="names"/> (wildcards, case-insensitive), for
    /// the -Name parameter set of Remove/Disable/Enable-WgPeer. A name without wildcards that matches no peer
    /// is a non-terminating PeerNotFound error, as in Get-WgPeer.
    /// </summary>
    internal List<string> KeysNamed(IGatewayServer server, string[] names)
    {
        var patterns = names.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
        var matched = new bool[names.Length];
        var keys = new List<string>();
        foreach (var p in server.GetPeers())
        {
            bool any = false;
            for (int i = 0; i < patterns.Length; i++)
                if (patterns[i].IsMatch(p.Name ?? "")) { matched[i] = true; any = true; }
            if (any) keys.Add(p.PublicKey.ToBase64());
        }
        for (int i = 0; i < names.Length; i++)
            if (!matched[i] && !WildcardPattern.ContainsWildcardCharacters(names[i]))
                WriteError(new ErrorRecord(new ItemNotFoundException($"No peer named '{names[i]}' on server '{server.Name}'."),
                    "PeerNotFound", ErrorCategory.ObjectNotFound, names[i]));
        return keys;
    }

    /// <summary>The non-terminating ObjectNotFound error every peer cmdlet gives for an unknown key.</summary>
    internal void WritePeerNotFound(IGatewayServer server, string publicKey) =>
        WriteError(new ErrorRecord(new ItemNotFoundException($"No peer with public key {publicKey} on server '{server.Name}'."),
            "PeerNotFound", ErrorCategory.ObjectNotFound, publicKey));
}
