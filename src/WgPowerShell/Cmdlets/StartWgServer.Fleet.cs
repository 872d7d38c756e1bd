using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Gateway;
using WgFleet;
using WgPowerShell.Models;
using WgPowerShell.Session;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

// Start-WgServer -Registry -Fleet (docs/fleet.md): this process becomes an instance of a fleet. The session then
// acts on the fleet (as after Connect-WgServer -Registry), with this instance's figures; Stop-WgServer stops it.
public sealed partial class StartWgServerCommand
{
    /// <summary>The fleet registry: an Npgsql connection string (it may hold a password and is never printed).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Registry { get; set; }

    /// <summary>The fleet to serve (New-WgFleet creates it); with -Registry.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Fleet { get; set; }

    /// <summary>A file whose first line is the fleet secret (preshared keys are encrypted with it); with -Registry.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? FleetSecretPath { get; set; }

    /// <summary>A file holding the private key (base64, as `wg genkey` writes it), instead of -PrivateKey.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? PrivateKeyPath { get; set; }

    /// <summary>This instance's id in the fleet (unique); default: host name, process id and a random suffix.</summary>
    [Parameter]
    [ValidatePattern("^[A-Za-z0-9_.:-]{1,64}$")]
    public string? InstanceId { get; set; }

    /// <summary>The UDP port of this instance's mesh (the cross-instance hub: peers on other instances reach this one's); 0 = a free one. Without it and -MeshEndpoint: no mesh.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int? MeshListenPort { get; set; }

    /// <summary>Where the other instances reach this one's mesh (address:port); default: -BindAddress and the mesh's port.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MeshEndpoint { get; set; }

    /// <summary>-PrivateKeyPath of a single gateway: the file's key as -PrivateKey (PrivateKeyConflict when both are given).</summary>
    private void UsePrivateKeyPath()
    {
        if (PrivateKeyPath is null) return;
        if (PrivateKey is not null)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-PrivateKey and -PrivateKeyPath: give one of them."),
                "PrivateKeyConflict", ErrorCategory.InvalidArgument, null));
        using var key = FleetParameters.ReadPrivateKey(this, PrivateKeyPath);
        PrivateKey = key.ExportBase64();
    }

    private void StartFleetInstance()
    {
        if (Registry is null || Fleet is null || FleetSecretPath is null)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("A fleet instance needs -Registry, -Fleet and -FleetSecretPath together (-InstanceId, -MeshListenPort and -MeshEndpoint only apply to one)."),
                "FleetParameterMissing", ErrorCategory.InvalidArgument, null));
        string[] notApplicable = [nameof(ConfigPath), nameof(Address), nameof(Backend), nameof(PeerIsolation), nameof(MTU)];
        if (notApplicable.FirstOrDefault(MyInvocation.BoundParameters.ContainsKey) is { } given)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-{given} does not apply to a fleet instance: the fleet's registry holds its addresses and peers, and instances run the userspace engine."),
                "FleetSettingNotApplicable", ErrorCategory.InvalidArgument, given));
        if ((PrivateKey is null) == (PrivateKeyPath is null))
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("A fleet instance needs the fleet's private key: -PrivateKey or -PrivateKeyPath (one of them)."),
                "FleetKeyRequired", ErrorCategory.InvalidArgument, null));
        if (Session.Remote is not null || Session.All().Count > 0)
            ThrowTerminatingError(new ErrorRecord(new InvalidOperationException("This session already runs or reaches servers; a fleet instance needs a session of its own (a new pwsh or runspace)."),
                "FleetSessionBusy", ErrorCategory.ResourceExists, Name));
        EgressOptions? egressOptions = null;
        try { egressOptions = EgressParameters.ToOptions(EgressAllow, EgressDeny, EgressUnprotected, EgressLimit); }
        catch (EgressParameterException e) { ThrowTerminatingError(e.ToErrorRecord()); }
        if (!ShouldProcess($"instance of fleet '{Fleet}'", "Start")) return;

        var key = PrivateKey is not null ? WgPrivateKey.Parse(PrivateKey) : FleetParameters.ReadPrivateKey(this, PrivateKeyPath!);
        var registry = FleetParameters.Open(this, Registry!, Fleet!, FleetSecretPath!);
        FleetInstance instance;
        try
        {
            instance = FleetInstance.Start(registry, new FleetInstanceOptions
            {
                PrivateKey = key, Name = Name, InstanceId = InstanceId,
                ListenPort = MyInvocation.BoundParameters.ContainsKey(nameof(ListenPort)) ? ListenPort : null,
                BindAddress = BindAddress, Egress = Egress, EgressOptions = egressOptions,
                UapiPath = UapiPath is null ? null : GetUnresolvedProviderPathFromPSPath(UapiPath),
                MeshListenPort = MeshListenPort, MeshEndpoint = MeshEndpoint,
            });
        }
        catch (WgException e)
        {
            key.Dispose();
            registry.Dispose();
            WriteWgError(e, Fleet);
            return;
        }
        var gateway = new FleetGateway(registry, instance, Name);
        Session.SetRemote(new FleetConnection(Session, gateway, $"fleet '{Fleet}' at {registry.Location}"));
        foreach (var warning in instance.Server.StartWarnings) WriteWarning(warning);
        WriteVerbose($"Instance '{instance.InstanceId}' of fleet '{Fleet}' serves {instance.Server.PeerCount} peers on UDP port {instance.Server.ListenPort}, public key {gateway.PublicKey}.");
        WriteObject(new WgServer(gateway));
    }
}
