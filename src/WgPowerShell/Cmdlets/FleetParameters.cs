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
    /// <summary>The secret file's first line; FleetSecretUnreadable when the file cannot be read.</summary>
    public static FleetSecret ReadSecret(PSCmdlet cmdlet, string fleet, string path)
    {
        string file = cmdlet.GetUnresolvedProviderPathFromPSPath(path);
        string text;
        try { text = File.ReadLines(file).FirstOrDefault() ?? ""; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(new IOException($"-FleetSecretPath: cannot read '{file}' ({e.GetType().Name}).", e),
                "FleetSecretUnreadable", ErrorCategory.ReadError, path));
            throw;
        }
        try { return FleetSecret.Derive(fleet, text); }
        catch (WgException e) { cmdlet.ThrowTerminatingError(new ErrorRecord(e, e.ErrorId, ErrorCategory.InvalidArgument, path)); throw; }
    }

    /// <summary>A base64 private key from a file (as `wg genkey` writes it); InvalidPrivateKeyFile otherwise.</summary>
    public static WgPrivateKey ReadPrivateKey(PSCmdlet cmdlet, string path)
    {
        string file = cmdlet.GetUnresolvedProviderPathFromPSPath(path);
        string text = "";
        try { text = File.ReadLines(file).FirstOrDefault()?.Trim() ?? ""; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(new IOException($"-PrivateKeyPath: cannot read '{file}' ({e.GetType().Name}).", e),
                "PrivateKeyUnreadable", ErrorCategory.ReadError, path));
        }
        if (!WgPrivateKey.TryParse(text, out var key) || key is null)
            cmdlet.ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-PrivateKeyPath: '{file}' does not hold a base64 WireGuard private key (wg genkey)."),
                "InvalidPrivateKeyFile", ErrorCategory.InvalidData, path));
        return key!;
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
