using System.Globalization;
using System.Text;
using WgEngine.Contracts;
using WgEngine.Crypto;

namespace WgEngine.Uapi;

/// <summary>
/// An external WireGuard device (wireguard-go, boringtun, another gateway) managed over its UAPI
/// socket. Start configures it (private key and listen port when given); Stop only stops managing it:
/// the device keeps running with its peers.
/// </summary>
internal sealed class UapiBackend : IWireGuardBackend, IDeviceSettings, IPeerImport
{
    private readonly UapiClient _client;
    private readonly object _lock = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WgPrivateKey _deviceKey;      // our copy of the device's key: for PublicKey only, never shown
    private int _listenPort;
    private volatile bool _stopped;

    /// <param name="path">The device's UAPI socket.</param>
    /// <param name="privateKey">Set on the device when given; otherwise the device keeps its own (one is generated if it has none).</param>
    /// <param name="listenPort">Set on the device when given (0 = a free port); null keeps the device's port.</param>
    public UapiBackend(string path, WgPrivateKey? privateKey, int? listenPort)
    {
        _client = new UapiClient(path);
        if (!UapiSocketFile.IsLive(path))
            throw new WgException(WgErrorKind.ResourceUnavailable, "UapiDeviceUnavailable",
                $"No WireGuard device is listening on UAPI socket '{path}'; start it first (e.g. wireguard-go NAME).");
        var sb = new StringBuilder();
        using var state = Query();
        WgPrivateKey? generated = null;
        if (privateKey is null && state.PrivateKey is null) privateKey = generated = WgPrivateKey.Generate();
        if (privateKey is not null) sb.Append("private_key=").Append(privateKey.ExportHex()).Append('\n');
        if (listenPort is { } port) sb.Append(CultureInfo.InvariantCulture, $"listen_port={port}\n");
        if (sb.Length > 0) Check(_client.Set(sb.ToString()), "take the private key and listen port");
        generated?.Dispose();
        using var after = Query();
        _deviceKey = after.PrivateKey ?? throw new WgException(WgErrorKind.InvalidOperation, "UapiNoPrivateKey",
            $"The device at '{path}' reports no private key.");
        after.PrivateKey = null;
        _listenPort = after.ListenPort;
        Fwmark = after.Fwmark;
    }

    public string Kind => "Uapi";
    public string Path => _client.Path;
    public WgKey PublicKey => _deviceKey.PublicKey;
    public int ListenPort => _listenPort;
    public bool IsRunning => !_stopped;
    public Task Completion => _completion.Task;
    public uint Fwmark { get; private set; }

    public void AddPeer(PeerConfig peer)
    {
        lock (_lock)
        {
            if (Find(peer.PublicKey) is not null)
                throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists", $"A peer with public key {peer.PublicKey} already exists on the device.");
            Check(_client.Set(PeerLines(peer, updateOnly: false)), "add the peer");
        }
    }

    public void UpdatePeer(PeerConfig peer)
    {
        lock (_lock)
        {
            if (Find(peer.PublicKey) is null)
                throw new WgException(WgErrorKind.NotFound, "PeerNotFound", $"No peer with public key {peer.PublicKey} on the device.");
            Check(_client.Set(PeerLines(peer, updateOnly: true)), "update the peer");
        }
    }

    public bool RemovePeer(WgKey publicKey)
    {
        lock (_lock)
        {
            if (Find(publicKey) is null) return false;
            Check(_client.Set($"public_key={publicKey.ToHex()}\nremove=true\n"), "remove the peer");
            return true;
        }
    }

    public PeerStatus? GetPeer(WgKey publicKey) => Find(publicKey) is { } p ? p.ToStatus() : null;

    public IReadOnlyList<PeerStatus> GetPeers()
    {
        using var r = Query();
        return r.Peers.Select(p => p.ToStatus()).ToList();
    }

    public IReadOnlyList<PeerConfig> ExportPeers()
    {
        using var r = Query();
        return r.Peers.Select(p => p.ToConfig()).ToList();
    }

    /// <summary>Sums the peers' counters; zeros when stopped or the device cannot be reached (a view must not throw).</summary>
    public InterfaceStats GetStats()
    {
        if (_stopped) return default;
        try
        {
            using var r = Query();
            return DevicePeer.SumStats(r.Peers);
        }
        catch (WgException)
        {
            return default;
        }
    }

    public void SetListenPort(int port)
    {
        lock (_lock)
        {
            Check(_client.Set(string.Create(CultureInfo.InvariantCulture, $"listen_port={port}\n")), "change its listen port");
            using var r = Query();
            _listenPort = r.ListenPort;
        }
    }

    public void SetFwmark(uint mark)
    {
        lock (_lock)
        {
            Check(_client.Set(string.Create(CultureInfo.InvariantCulture, $"fwmark={mark}\n")), "change its fwmark");
            Fwmark = mark;
        }
    }

    public void SetPrivateKey(WgPrivateKey key)
    {
        lock (_lock)
        {
            Check(_client.Set($"private_key={key.ExportHex()}\n"), "change its private key");
            using var r = Query();
            if (r.PrivateKey is { } k) { r.PrivateKey = null; _deviceKey.Dispose(); _deviceKey = k; }
        }
    }

    /// <summary>Stops managing the device; the device itself keeps running.</summary>
    public void Stop()
    {
        _stopped = true;
        _completion.TrySetResult();
    }

    public void Dispose()
    {
        Stop();
        _deviceKey.Dispose();
    }

    private static string PeerLines(PeerConfig peer, bool updateOnly)
    {
        var sb = new StringBuilder();
        sb.Append("public_key=").Append(peer.PublicKey.ToHex()).Append('\n');
        if (updateOnly) sb.Append("update_only=true\n");
        sb.Append("preshared_key=").Append(peer.PresharedKey is { } psk ? psk.ToHex() : new string('0', 64)).Append('\n');
        if (peer.Endpoint is { } ep) sb.Append("endpoint=").Append(UapiGetWriter.FormatEndpoint(ep)).Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"persistent_keepalive_interval={peer.PersistentKeepalive}\n");
        sb.Append("replace_allowed_ips=true\n");
        foreach (var a in peer.AllowedIPs) sb.Append("allowed_ip=").Append(a.ToString()).Append('\n');
        return sb.ToString();
    }

    private DevicePeer? Find(WgKey key)
    {
        using var r = Query();
        return r.Peers.FirstOrDefault(p => p.PublicKey == key);
    }

    private DisposableResult Query()
    {
        var (body, errno) = _client.Get();
        Check(errno, "report its configuration");
        try { return new DisposableResult(UapiGetParser.Parse(body)); }
        catch (FormatException e)
        {
            throw new WgException(WgErrorKind.InvalidOperation, "UapiBadAnswer", $"The device at '{Path}' sent an answer that does not parse: {e.Message}", e);
        }
    }

    private void Check(int errno, string what)
    {
        if (errno == 0) return;
        throw errno == UapiErrno.PortInUse
            ? new WgException(WgErrorKind.ResourceUnavailable, "ListenPortInUse", $"The device at '{Path}' could not {what}: errno {-errno} (address in use).")
            : new WgException(WgErrorKind.InvalidArgument, "UapiSetFailed", $"The device at '{Path}' refused to {what}: errno {-errno}.");
    }

    /// <summary>A get result whose private key copy is erased when done.</summary>
    private sealed class DisposableResult(UapiGetParser.Result r) : IDisposable
    {
        public WgPrivateKey? PrivateKey { get => r.PrivateKey; set => r.PrivateKey = value; }
        public int ListenPort => r.ListenPort;
        public uint Fwmark => r.Fwmark;
        public List<DevicePeer> Peers => r.Peers;
        public void Dispose() => r.PrivateKey?.Dispose();
    }
}
