using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgFleet;
using WgFleet.Postgres;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// What the fleet cmdlets (New-WgFleet, Start-WgServer -Registry, Connect-WgServer -Registry) share: reading the
/// fleet secret and a private key from files, and opening the registry. Failures are terminating errors with
/// the engine's ErrorIds; the connection string is never part of a message (it may hold a password).
/// </summary>
internal static class FleetParameters
{
    /// <summary>The secret file's first line (WgFleet.FleetFiles); FleetSecretUnreadable when the file cannot be read.</summary>
    public static FleetSecret ReadSecret(PSCmdlet cmdlet, string fleet, string path) =>
        Terminating(cmdlet, path, () => FleetFiles.ReadSecret(fleet, cmdlet.GetUnresolvedProviderPathFromPSPath(path), "-FleetSecretPath"));

    /// <summary>A base64 private key from a file (as `wg genkey` writes it); InvalidPrivateKeyFile otherwise.</summary>
    public static WgPrivateKey ReadPrivateKey(PSCmdlet cmdlet, string path) =>
        Terminating(cmdlet, path, () => FleetFiles.ReadPrivateKey(cmdlet.GetUnresolvedProviderPathFromPSPath(path), "-PrivateKeyPath"));

    private static T Terminating<T>(PSCmdlet cmdlet, string path, Func<T> read)
    {
        try { return read(); }
        catch (WgException e)
        {
            var category = e.Kind switch
            {
                WgErrorKind.ResourceUnavailable => ErrorCategory.ReadError,
                WgErrorKind.InvalidData => ErrorCategory.InvalidData,
                _ => WgCmdletBase.Category(e.Kind),
            };
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, e.ErrorId, category, path));
            throw;
        }
    }

    public static PostgresFleetRegistry Open(PSCmdlet cmdlet, string connectionString, string fleet, string secretPath)
    {
        var secret = ReadSecret(cmdlet, fleet, secretPath);
        try { return PostgresFleetRegistry.Open(connectionString, fleet, secret); }
        catch (WgException e)
        {
            // The target is the fleet's name, never the connection string.
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, e.ErrorId, WgCmdletBase.Category(e.Kind), fleet));
            throw;
        }
    }
}
