using System.Management.Automation;
using WgEngine.Contracts;
using WgPowerShell.Completion;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Gateway;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Set-WgServer: changes a running gateway in place. -PrivateKey rotates the gateway key (peers are
/// kept; their sessions restart with the new key, so clients need the new public key). -ListenPort
/// moves the UDP socket; a port in use fails and changes nothing. The port moves first, so a failed
/// move leaves the key untouched too.
/// </summary>
[Cmdlet(VerbsCommon.Set, "WgServer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(WgServer))]
public sealed class SetWgServerCommand : WgCmdletBase
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Server")]
    [ServerNameTransformation]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    public string? Name { get; set; }

    [Parameter]
    [ValidateWgKey]
    public string? PrivateKey { get; set; }

    /// <summary>0 takes a free port from the OS.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int? ListenPort { get; set; }

    // Egress rules, changed at runtime and persisted (docs/egress.md). Each given list replaces the one in
    // force (@() clears it); the others stay.
    /// <summary>Exceptions (CIDRs) to the built-in refusals of the userspace egress.</summary>
    [Parameter]
    [AllowEmptyCollection]
    [ValidateCidr]
    public string[]? EgressAllow { get; set; }

    /// <summary>Destinations (CIDRs) refused on top of the built-in ones.</summary>
    [Parameter]
    [AllowEmptyCollection]
    [ValidateCidr]
    public string[]? EgressDeny { get; set; }

    /// <summary>-EgressUnprotected drops the built-in refusals; -EgressUnprotected:$false restores them.</summary>
    [Parameter]
    public SwitchParameter EgressUnprotected { get; set; }

    /// <summary>-PeerIsolation turns client isolation on, -PeerIsolation:$false off.</summary>
    [Parameter]
    public SwitchParameter PeerIsolation { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>The rules in force with the given parameters replacing their part; null when none was given.</summary>
    private EgressRules? NewEgressRules(IGatewayServer server)
    {
        bool unprotectedGiven = MyInvocation.BoundParameters.ContainsKey(nameof(EgressUnprotected));
        if (EgressAllow is null && EgressDeny is null && !unprotectedGiven) return null;
        var current = server.EgressRules;
        return new EgressRules(
            EgressAllow is null ? current.Allow : Parse.Prefixes(EgressAllow),
            EgressDeny is null ? current.Deny : Parse.Prefixes(EgressDeny),
            unprotectedGiven ? EgressUnprotected.IsPresent : current.Unprotected);
    }

    private static string Show(IReadOnlyList<WgEngine.Net.IpPrefix> list) => list.Count == 0 ? "none" : string.Join(", ", list);

    protected override void ProcessRecord()
    {
        var server = ResolveServer(Name);
        if (server is null) return;
        var changes = new List<string>(2);
        if (ListenPort is { } port) changes.Add($"listen port {server.ListenPort} -> {port}");
        bool? isolation = MyInvocation.BoundParameters.ContainsKey(nameof(PeerIsolation)) ? PeerIsolation.IsPresent : null;
        if (isolation is { } iso) changes.Add($"peer isolation {(iso ? "on" : "off")}");
        var rules = NewEgressRules(server);
        if (rules is not null) changes.Add($"egress rules (allow {Show(rules.Allow)}; deny {Show(rules.Deny)}{(rules.Unprotected ? "; UNPROTECTED" : "")})");
        WgPrivateKey? key = PrivateKey is null ? null : WgPrivateKey.Parse(PrivateKey);
        try
        {
            if (key is not null) changes.Add($"private key (public key {ShortKey(server.PublicKey.ToBase64())} -> {ShortKey(key.PublicKey.ToBase64())})");
            if (changes.Count == 0)
            {
                if (PassThru) WriteObject(new WgServer(server));
                return;
            }
            if (!ShouldProcess($"WireGuard server '{server.Name}': {string.Join(", ", changes)}", "Set")) return;
            if (isolation is { } on)
            {
                server.SetPeerIsolation(on);
                WriteVerbose($"Server '{server.Name}': peer isolation {(on ? "on" : "off")} from the next packet.");
            }
            if (rules is not null)
            {
                server.SetEgressRules(rules);
                if (rules.Unprotected)
                    WriteWarning($"-EgressUnprotected: peers of '{server.Name}' may reach the host's loopback, cloud metadata, private networks and the host's own addresses through the egress.");
                WriteVerbose($"Server '{server.Name}' applies the new egress rules to every packet from now on.");
            }
            if (ListenPort is { } p)
            {
                server.SetListenPort(p);
                WriteVerbose($"Server '{server.Name}' now listens on UDP port {server.ListenPort}.");
            }
            if (key is not null)
            {
                server.SetPrivateKey(key);
                key = null;   // the server owns it now
                WriteVerbose($"Server '{server.Name}' has the new public key {server.PublicKey}; peers must use it from now on.");
            }
            if (PassThru) WriteObject(new WgServer(server));
        }
        catch (WgException e)
        {
            WriteWgError(e, server.Name);
        }
        finally
        {
            key?.Dispose();
        }
    }
}
