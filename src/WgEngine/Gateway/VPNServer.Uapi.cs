using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Net;
using WgEngine.Uapi;

namespace WgEngine.Gateway;

/// <summary>
/// The facade as a UAPI target: `wg set` / `wg syncconf` change peers through the same policy and
/// peer table as the cmdlets, so Get-WgPeer sees every change at once.
/// Differences from wireguard-go, by design: an allowed_ip owned by another peer (or the gateway's
/// own address) is refused with EINVAL instead of being moved; an all-zero private_key is refused.
/// </summary>
public sealed partial class VPNServer : IUapiTarget
{
    private UapiServer? _uapi;
    private readonly List<WgPrivateKey> _uapiKeys = new();   // keys set over UAPI: disposed on Stop
    private string? _uapiPath;

    /// <summary>The UAPI socket served (Userspace backend) or managed (Uapi backend); null when none.</summary>
    public string? UapiPath => _uapiPath;

    private void StartUapi(ServerOptions options)
    {
        if (options.UapiPath is null) return;
        if (!Capabilities.ServesUapi)
        {
            _uapiPath = options.UapiPath;   // the external device's socket: managed, not served
            return;
        }
        _uapi = UapiServer.Start(options.UapiPath, this);
        _uapiPath = _uapi.Path;
    }

    private void StopUapi()
    {
        _uapi?.Dispose();
        _uapi = null;
    }

    /// <summary>After the backend stopped: erase the keys that were set over UAPI.</summary>
    private void DisposeUapiKeys()
    {
        foreach (var k in _uapiKeys) k.Dispose();
        _uapiKeys.Clear();
    }

    UapiDeviceState IUapiTarget.GetUapiState()
    {
        lock (_lock)
        {
            var statuses = _backend.GetPeers();
            var peers = new List<UapiPeerState>(statuses.Count);
            foreach (var s in statuses)
            {
                _peers.TryGetValue(s.PublicKey, out var entry);
                peers.Add(new UapiPeerState
                {
                    PublicKey = s.PublicKey,
                    PresharedKey = entry?.Config?.PresharedKey,
                    Endpoint = s.Endpoint,
                    LastHandshake = s.LatestHandshake,
                    TxBytes = s.SentBytes,
                    RxBytes = s.ReceivedBytes,
                    PersistentKeepalive = s.PersistentKeepalive,
                    AllowedIPs = s.AllowedIPs,
                });
            }
            return new UapiDeviceState
            {
                PrivateKey = _privateKey,   // never logged: only the UAPI get writer reads it
                ListenPort = _backend.ListenPort,
                Fwmark = (_backend as IDeviceSettings)?.Fwmark ?? 0,
                Peers = peers,
            };
        }
    }

    int IUapiTarget.ApplyUapi(UapiSetRequest request)
    {
        lock (_lock)
        {
            if (!_backend.IsRunning) return UapiErrno.IO;
            if (_readOnly) return UapiErrno.ReadOnly;   // `wg set` then says "Read-only file system"
            try
            {
                // One file write for the whole request (and only if something changed).
                BeginDefer();
                try
                {
                    ApplyDevice(request);
                    foreach (var change in request.Peers) ApplyPeer(change);
                }
                finally { EndDefer(); }
                return UapiErrno.Ok;
            }
            catch (WgException e)
            {
                return e.Kind == WgErrorKind.ResourceUnavailable ? UapiErrno.PortInUse
                    : e.Kind == WgErrorKind.InvalidOperation ? UapiErrno.IO
                    : UapiErrno.Invalid;
            }
        }
    }

    private void ApplyDevice(UapiSetRequest request)
    {
        var settings = _backend as IDeviceSettings;
        if (request.ClearPrivateKey)
            throw new WgException(WgErrorKind.InvalidArgument, "PrivateKeyRequired", "A gateway cannot run without a private key.");
        if (request.PrivateKey is { } key && key.PublicKey != PublicKey)
        {
            if (settings is null) throw Unsupported("private_key");
            settings.SetPrivateKey(key);
            request.PrivateKey = null;          // the server keeps it alive from here on
            _uapiKeys.Add(key);
            _privateKey = key;
            RemovePeer(key.PublicKey);          // a peer cannot have the interface's own key
            Persist();
        }
        if (request.ListenPort is { } port && (port == 0 || port != _backend.ListenPort))
        {
            if (settings is null) throw Unsupported("listen_port");
            settings.SetListenPort(port);
            Persist();
        }
        if (request.Fwmark is { } mark && mark != (settings?.Fwmark ?? 0))
        {
            if (settings is null) throw Unsupported("fwmark");
            settings.SetFwmark(mark);
            Persist();
        }
        if (request.ReplacePeers)
            foreach (var k in _peers.Keys.ToList()) RemovePeer(k);
    }

    private void ApplyPeer(UapiPeerChange c)
    {
        if (c.PublicKey == PublicKey) return;   // wireguard-go ignores a section for the device's own key
        bool exists = _peers.TryGetValue(c.PublicKey, out var entry);
        if (c.Remove)
        {
            if (exists) RemovePeer(c.PublicKey);
            return;
        }
        WgKey? psk = c.PresharedKey is { IsZero: false } k ? k : null;
        if (!exists)
        {
            if (c.UpdateOnly) return;
            AddPeerCore(new PeerSpec
            {
                PublicKey = c.PublicKey, AllowedIPs = c.AllowedIPs, PresharedKey = psk,
                Endpoint = c.Endpoint, PersistentKeepalive = c.PersistentKeepalive ?? 0,
            }, allocateWhenEmpty: false);
            return;
        }
        IReadOnlyList<IpPrefix>? allowed = c.ReplaceAllowedIPs ? c.AllowedIPs
            : c.AllowedIPs.Count > 0 ? [.. entry!.AllowedIPs, .. c.AllowedIPs]
            : null;
        UpdatePeer(c.PublicKey, new PeerUpdate
        {
            AllowedIPs = allowed,
            PresharedKey = psk,
            ClearPresharedKey = c.PresharedKey is { IsZero: true },
            Endpoint = c.Endpoint,
            PersistentKeepalive = c.PersistentKeepalive,
        });
    }

    private WgException Unsupported(string what) =>
        new(WgErrorKind.InvalidArgument, "UapiSettingNotSupported", $"Backend '{_backend.Kind}' of server '{Name}' cannot change {what}.");
}
