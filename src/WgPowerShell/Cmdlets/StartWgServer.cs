using System.Management.Automation;
using WgPowerShell.Completion;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Uapi;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>Start-WgServer: starts a gateway in this session and outputs its WgServer.</summary>
[Cmdlet(VerbsLifecycle.Start, "WgServer", SupportsShouldProcess = true)]
[OutputType(typeof(WgServer))]
public sealed class StartWgServerCommand : WgCmdletBase
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
    [ValidateSet("Userspace", "Uapi")]
    public string Backend { get; set; } = "Userspace";

    [Parameter]
    public EgressMode Egress { get; set; } = EgressMode.None;

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

    /// <summary>Reserved (userspace egress allow-list): refused until implemented.</summary>
    [Parameter]
    public string[]? EgressAllow { get; set; }

    private VPNServer StartServer(WgPrivateKey? key, IReadOnlyList<IpPrefix> addresses, string? uapiPath) =>
        VPNServer.Start(new ServerOptions
        {
            // An external device keeps its port unless -ListenPort is given.
            Name = Name, PrivateKey = key, Addresses = addresses,
            ListenPort = string.Equals(Backend, "Uapi", StringComparison.OrdinalIgnoreCase) && !MyInvocation.BoundParameters.ContainsKey(nameof(ListenPort))
                ? ServerOptions.KeepDevicePort : ListenPort,
            Backend = Backend, Egress = Egress, UapiPath = uapiPath,
            ConfigPath = ConfigPath is null ? null : GetUnresolvedProviderPathFromPSPath(ConfigPath),
            OverrideListenPort = MyInvocation.BoundParameters.ContainsKey(nameof(ListenPort)),
            OverrideAddresses = MyInvocation.BoundParameters.ContainsKey(nameof(Address)),
        });

    protected override void ProcessRecord()
    {
        foreach (var (param, given) in new[] { ("EgressAllow", EgressAllow is not null) })
            if (given)
                ThrowTerminatingError(new ErrorRecord(
                    new PSNotSupportedException($"-{param} is not yet supported by this version of WireGuardGateway; leave it out."),
                    "ParameterNotYetSupported", ErrorCategory.NotImplemented, param));

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
        bool external = string.Equals(Backend, "Uapi", StringComparison.OrdinalIgnoreCase);
        string? uapiPath = UapiPath is null ? null : GetUnresolvedProviderPathFromPSPath(UapiPath);
        try
        {
            if (uapiPath is null)
                uapiPath = external ? Path.Combine(UapiSocketFile.SystemDirectory, Name + ".sock") : UapiSocketFile.DefaultPath(Name);
            server = StartServer(key, addresses, uapiPath);
        }
        catch (WgException e) when (e.ErrorId == "UapiSocketInUse" && UapiPath is null && !external)
        {
            // The default socket belongs to another live device of the same name (another session or
            // process): run without UAPI rather than fail; an explicit -UapiPath is never silently dropped.
            WriteWarning($"{e.Message} Server '{Name}' runs without a UAPI socket; give -UapiPath to serve one elsewhere.");
            try { server = StartServer(key, addresses, null); }
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
        WriteVerbose($"Started WireGuard server '{server.Name}' on UDP port {server.ListenPort}, public key {server.PublicKey}, addresses {string.Join(", ", server.Addresses)}"
            + (server.UapiPath is null ? "" : $", UAPI {server.UapiPath}") + (server.ConfigPath is null ? "." : $", config {server.ConfigPath} ({server.PeerCount} peers)."));
        WriteObject(new WgServer(server));
    }
}
