using WgEngine.Contracts;
using WgEngine.Crypto;

namespace WgFleet;

/// <summary>
/// The files a fleet instance or a management session is given: the fleet secret and the gateway's private key,
/// each on its file's first line. Shared by the cmdlets and the host so both refuse the same files with the same
/// ErrorIds. The label names the setting in messages (e.g. "-PrivateKeyPath"); no message ever holds the file's
/// content.
/// </summary>
public static class FleetFiles
{
    /// <summary>The fleet secret from the file's first line; FleetSecretUnreadable (ResourceUnavailable) or InvalidFleetSecret.</summary>
    public static FleetSecret ReadSecret(string fleet, string path, string label) =>
        FleetSecret.Derive(fleet, FirstLine(path, label, "FleetSecretUnreadable"));

    /// <summary>A base64 private key (as `wg genkey` writes it); PrivateKeyUnreadable (ResourceUnavailable) or
    /// InvalidPrivateKeyFile (InvalidData).</summary>
    public static WgPrivateKey ReadPrivateKey(string path, string label)
    {
        string text = FirstLine(path, label, "PrivateKeyUnreadable").Trim();
        if (!WgPrivateKey.TryParse(text, out var key) || key is null)
            throw new WgException(WgErrorKind.InvalidData, "InvalidPrivateKeyFile",
                $"{label}: '{path}' does not hold a base64 WireGuard private key (wg genkey).");
        return key;
    }

    private static string FirstLine(string path, string label, string errorId)
    {
        try { return File.ReadLines(path).FirstOrDefault() ?? ""; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WgException(WgErrorKind.ResourceUnavailable, errorId, $"{label}: cannot read '{path}' ({e.GetType().Name}).", e);
        }
    }
}
