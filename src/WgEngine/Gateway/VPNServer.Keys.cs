using WgEngine.Contracts;
using WgEngine.Crypto;

namespace WgEngine.Gateway;

/// <summary>
/// Interface settings changed in place while the gateway runs (Set-WgServer): the runbook's key
/// rotation and a port move. Peers, their addresses and names are kept; the config file follows.
/// </summary>
public sealed partial class VPNServer
{
    /// <summary>
    /// Replaces the gateway's private key. Every session is dropped (peers handshake again with the new
    /// key). The server takes ownership of <paramref name="key"/> and erases it when stopped. A key whose
    /// public half belongs to a peer is refused (WgException InvalidArgument "PrivateKeyIsPeer").
    /// </summary>
    public void SetPrivateKey(WgPrivateKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_lock)
        {
            EnsureChangeable();
            var settings = SettingsOrThrow("its private key");
            if (key.PublicKey == PublicKey) { key.Dispose(); return; }
            if (_peers.TryGetValue(key.PublicKey, out var peer))
                throw new WgException(WgErrorKind.InvalidArgument, "PrivateKeyIsPeer",
                    $"The new key's public key belongs to peer {peer.Describe()} on server '{Name}'; a gateway cannot share a key with its peer.");
            settings.SetPrivateKey(key);
            _uapiKeys.Add(key);        // kept alive while the backend runs, erased on Stop
            if (Capabilities.OwnsPrivateKey) _privateKey = key;   // an external device keeps its own
            Persist();
        }
    }

    /// <summary>
    /// Moves the gateway to another UDP port (0 = a free one), keeping peers and sessions. A port in use
    /// throws WgException(ResourceUnavailable, "ListenPortInUse") and the old socket stays.
    /// </summary>
    public void SetListenPort(int port)
    {
        if (port is < 0 or > 65535)
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidListenPort", $"ListenPort {port} is outside 0-65535.");
        lock (_lock)
        {
            EnsureChangeable();
            var settings = SettingsOrThrow("its listen port");
            if (port != 0 && port == _backend.ListenPort) return;
            settings.SetListenPort(port);
            Persist();
        }
    }

    private IDeviceSettings SettingsOrThrow(string what) =>
        _backend as IDeviceSettings ?? throw new WgException(WgErrorKind.InvalidOperation, "SettingNotSupported",
            $"Backend '{_backend.Kind}' of server '{Name}' cannot change {what}.");
}
