using System.Management.Automation;
using WgEngine.Contracts;
using WgPowerShell.Completion;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Uapi;
using WgPowerShell.Models;
using WgPowerShell.Session;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>Start-WgServer: starts a gateway in this session and outputs its WgServer.</summary>
[Cmdlet(VerbsLifecycle.Start, "WgServer", SupportsShouldProcess = true)]
[OutputType(typeof(WgServer))]
public sealed partial class StartWgServerCommand : WgCmdletBase
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ValidatePattern("^[A-Za-z0-9_=+.-]{1,15}$")]
    [ArgumentCompleter(typeof(ServerNameCompleter))]
    public string Name { get; set; } = "wg0";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, 65535)]
    public int ListenPort { get; set; } = 51820;

    [Parameter]
    [ValidateWgKey]
    public string? PrivateKey { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ValidateCidr]
    public string[] Address { get; set; } = ["10.8.0.1/24"];

    [Parameter]
    public BackendKind Backend { get; set; } = BackendKind.Userspace;

    /// <summary>Userspace (default): the in-process network stack re-dials the peers' traffic from the host.
    /// None: hub only. Not used with -Backend Uapi (the external device routes by itself).</summary>
    [Parameter]
    public EgressMode Egress { get; set; } = EgressMode.Userspace;

    /// <summary>
    /// A wg-quick file: loaded when it exists (key, port, addresses, every peer), created otherwise, and
    /// rewritten atomically (mode 0600) after every change. -PrivateKey must match the file's key;
    /// -ListenPort and -Address, when given, override the file's and are written back.
    /// </summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? ConfigPath { get; set; }

    /// <summary>
    /// Userspace: where to serve the UAPI (default: /var/run/wireguard/NAME.sock when writable, else
    /// $XDG_RUNTIME_DIR/wireguard, else a temp folder). Uapi backend: the external device's socket
    /// (default /var/run/wireguard/NAME.sock).
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? UapiPath { get; set; }

    // Egress policy and limits (docs/egress.md): exceptions to the built-in refusals, more refusals, the
    // switch that drops the built-ins, and the limits of EgressOptions.
    /// <summary>Exceptions (CIDRs) to the built-in refusals of the userspace egress, e.g. an office subnet.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ValidateCidr]
    public string[]? EgressAllow { get; set; }

    /// <summary>The local IP address the UDP socket binds to (e.g. one public address of a multi-homed
    /// host); default: all addresses. In-process engine only.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public System.Net.IPAddress? BindAddress { get; set; }

    /// <summary>Tunnel MTU (576-65535); default: the config file's MTU, else 1420. In-process engine only.</summary>
    [Parameter]
    [ValidateRange(576, 65535)]
    public int? MTU { get; set; }

    /// <summary>Destinations (CIDRs) the userspace egress refuses on top of the built-in ones.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ValidateCidr]
    public string[]? EgressDeny { get; set; }

    /// <summary>Drops the built-in refusals (host loopback, cloud metadata, private ranges, the host's own addresses).</summary>
    [Parameter]
    public SwitchParameter EgressUnprotected { get; set; }

    /// <summary>Client isolation: peers do not reach each other through the hub unless a rule of the sender allows it.</summary>
    [Parameter]
    public SwitchParameter PeerIsolation { get; set; }

    /// <summary>Limits of the userspace egress by name, e.g. @{ MaxUdpFlowsPerPeer = 64; UdpIdleTimeout = '00:05:00' }.</summary>
    [Parameter]
    [ValidateNotNull]
    public System.Collections.Hashtable? EgressLimit { get; set; }

    /// <summary>The engine's options from the parameters; the engine validates them (ServerOptions.Validate).</summary>
    private ServerOptions Options(WgPrivateKey? key, IReadOnlyList<IpPrefix> addresses, string? uapiPath, EgressOptions? egressOptions)
    {
        bool portGiven = MyInvocation.BoundParameters.ContainsKey(nameof(ListenPort));
        return new ServerOptions
        {
            Name = Name, PrivateKey = key, Addresses = addresses,
            // A device with its own socket keeps its port unless -ListenPort is given.
            ListenPort = portGiven || BackendFactory.CapabilitiesOf(Backend).OwnsPrivateKey ? ListenPort : ServerOptions.KeepDevicePort,
            Backend = Backend,
            Egress = MyInvocation.BoundParameters.ContainsKey(nameof(Egress)) ? Egress : null,
            EgressOptions = egressOptions, UapiPath = uapiPath,
            ConfigPath = ConfigPath is null ? null : GetUnresolvedProviderPathFromPSPath(ConfigPath),
            OverrideListenPort = portGiven,
            OverrideAddresses = MyInvocation.BoundParameters.ContainsKey(nameof(Address)),
            BindAddress = BindAddress, Mtu = MTU,
            PeerIsolation = MyInvocation.BoundParameters.ContainsKey(nameof(PeerIsolation)) ? PeerIsolation.IsPresent : null,
            OverrideEgressRules = EgressAllow is not null || EgressDeny is not null || EgressUnprotected.IsPresent,
        };
    }

    protected override void ProcessRecord()
    {
        if (Registry is not null || Fleet is not null || FleetSecretPath is not null || InstanceId is not null || MeshListenPort is not null || MeshEndpoint is not null) { StartFleetInstance(); return; }   // StartWgServer.Fleet.cs
        UsePrivateKeyPath();
        bool egressPolicyGiven = EgressAllow is not null || EgressDeny is not null || EgressUnprotected.IsPresent || EgressLimit is not null;
        EgressOptions? egressOptions = null;
        try { egressOptions = EgressParameters.ToOptions(EgressAllow, EgressDeny, EgressUnprotected, EgressLimit); }
        catch (EgressParameterException e) { ThrowTerminatingError(e.ToErrorRecord()); }
        // What the engine refuses for this backend (e.g. an egress for an external device), refused before anything is asked.
        try { Options(null, [], null, egressOptions).Validate(); }
        catch (WgException e) { ThrowTerminatingError(new ErrorRecord(e, e.ErrorId, Category(e.Kind), Egress)); }
        if (egressPolicyGiven && Egress != EgressMode.Userspace)
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException($"-EgressAllow, -EgressDeny, -EgressUnprotected and -EgressLimit apply to the userspace egress; they have no effect with -Egress {Egress}."),
                "EgressAllowNotApplicable", ErrorCategory.InvalidArgument, Egress));
        if (EgressUnprotected)
            WriteWarning($"-EgressUnprotected: peers of '{Name}' may reach the host's loopback, cloud metadata, private networks and the host's own addresses through the egress.");

        var addresses = Parse.Prefixes(Address);
        if (addresses.Count == 0)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-Address needs at least one CIDR, e.g. 10.8.0.1/24."),
                "NoAddress", ErrorCategory.InvalidArgument, null));

        if (Session.IsNameInUse(Name))
        {
            WriteError(new ErrorRecord(
                new InvalidOperationException($"A server named '{Name}' is already running in this session; pick another -Name or Stop-WgServer it first."),
                "ServerAlreadyExists", ErrorCategory.ResourceExists, Name));
            return;
        }
        if (!ShouldProcess($"WireGuard server '{Name}' on UDP port {ListenPort} ({string.Join(", ", addresses)})", "Start"))
            return;

        WgPrivateKey? key = PrivateKey is null ? null : WgPrivateKey.Parse(PrivateKey);
        VPNServer server;
        var caps = BackendFactory.CapabilitiesOf(Backend);
        string? uapiPath = UapiPath is null ? null : GetUnresolvedProviderPathFromPSPath(UapiPath);
        try
        {
            if (uapiPath is null && caps.ServesUapi)
                uapiPath = UapiSocketFile.DefaultPath(Name);
            else if (uapiPath is null && caps.ManagesUapiDevice)
                uapiPath = Path.Combine(UapiSocketFile.SystemDirectory, Name + ".sock");
            server = VPNServer.Start(Options(key, addresses, uapiPath, egressOptions));
        }
        catch (WgException e) when (e.ErrorId == "UapiSocketInUse" && UapiPath is null && caps.ServesUapi)
        {
            // The default socket belongs to another live device of the same name (another session or
            // process): run without UAPI rather than fail; an explicit -UapiPath is never silently dropped.
            WriteWarning($"{e.Message} Server '{Name}' runs without a UAPI socket; give -UapiPath to serve one elsewhere.");
            try { server = VPNServer.Start(Options(key, addresses, null, egressOptions)); }
            catch (WgException e2) { key?.Dispose(); WriteWgError(e2, Name); return; }
        }
        catch (WgException e)
        {
            key?.Dispose();
            WriteWgError(e, Name);
            return;
        }
        // The session owns the server from here on (stopped with the runspace or Remove-Module).
        if (!Session.TryAdd(server))
        {
            server.Dispose();
            WriteError(new ErrorRecord(new InvalidOperationException($"A server named '{Name}' was started concurrently."),
                "ServerAlreadyExists", ErrorCategory.ResourceExists, Name));
            return;
        }
        foreach (var warning in server.StartWarnings) WriteWarning(warning);
        PeerEventForwarder.Forward(server, Events);   // WireGuardGateway.Peer* engine events
        WriteVerbose($"Started WireGuard server '{server.Name}' on UDP port {server.ListenPort}, public key {server.PublicKey}, addresses {string.Join(", ", server.Addresses)}"
            + (server.UapiPath is null ? "" : $", UAPI {server.UapiPath}") + (server.ConfigPath is null ? "." : $", config {server.ConfigPath} ({server.PeerCount} peers)."));
        WriteObject(new WgServer(server));
    }
}
