using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Config;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgFleet;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// New-WgFleet: creates a fleet in a registry (the schema is created or migrated first): its gateway identity
/// (the public key only: the private key stays with whoever starts instances), port and addresses. The key is
/// -PrivateKey, or -PrivateKeyPath: read when the file exists, else generated and written there (mode 0600).
/// </summary>
[Cmdlet(VerbsCommon.New, "WgFleet", SupportsShouldProcess = true, DefaultParameterSetName = PathSet)]
[OutputType(typeof(WgFleetInfo))]
public sealed class NewWgFleetCommand : WgCmdletBase
{
    private const string PathSet = "PrivateKeyPath", KeySet = "PrivateKey";

    /// <summary>An Npgsql connection string; it may hold a password and is never printed.</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string? Registry { get; set; }

    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ValidateCidr]
    public string[] Address { get; set; } = ["10.8.0.1/24"];

    [Parameter]
    [ValidateRange(1, 65535)]
    public int ListenPort { get; set; } = 51820;

    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string? FleetSecretPath { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = KeySet)]
    [ValidateWgKey]
    public string? PrivateKey { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    public string? PrivateKeyPath { get; set; }

    protected override void ProcessRecord()
    {
        var addresses = Parse.Prefixes(Address);
        if (!ShouldProcess($"fleet '{Name}' (UDP {ListenPort}, {string.Join(", ", addresses)})", "Create")) return;
        using var registry = FleetParameters.Open(this, Registry!, Name!, FleetSecretPath!);
        WgPrivateKey key;
        string? writeTo = null;
        if (PrivateKey is not null) key = WgPrivateKey.Parse(PrivateKey);
        else
        {
            string file = GetUnresolvedProviderPathFromPSPath(PrivateKeyPath);
            if (File.Exists(file)) key = FleetParameters.ReadPrivateKey(this, PrivateKeyPath!);
            else { key = WgPrivateKey.Generate(); writeTo = file; }
        }
        using (key)
        {
            // The key file first (atomic, mode 0600), so that no fleet exists whose private key was lost; removed
            // again when the fleet cannot be created.
            if (writeTo is not null) AtomicFile.WriteAllText(writeTo, key.ExportBase64() + "\n");
            FleetInfo fleet;
            try { fleet = registry.CreateFleet(new FleetDefinition(key.PublicKey, ListenPort, addresses)); }
            catch (WgException e)
            {
                if (writeTo is not null) File.Delete(writeTo);
                WriteWgError(e, Name);
                return;
            }
            if (writeTo is not null) WriteVerbose($"Wrote fleet '{Name}''s private key to {writeTo} (mode 0600); give it to each instance.");
            WriteObject(new WgFleetInfo { Name = fleet.Name, PublicKey = fleet.PublicKey.ToBase64(), ListenPort = fleet.ListenPort,
                Address = fleet.Addresses.Select(a => a.ToString()).ToArray(), Registry = registry.Location });
        }
    }
}
