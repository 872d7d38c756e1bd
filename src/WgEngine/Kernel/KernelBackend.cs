using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Net;

namespace WgEngine.Kernel;

/// <summary>
/// The Linux kernel's WireGuard (the wireguard module) driven over netlink, without `wg` or `ip`:
/// rtnetlink for the link (created when missing, deleted on Stop when this backend created it),
/// the "wireguard" generic netlink family for keys, port, fwmark and peers. Packets never pass
/// through this process: the kernel routes the peers' traffic (no userspace egress, no ACLs).
/// </summary>
internal sealed class KernelBackend : IWireGuardBackend, IDeviceSettings, IPeerImport
{
    private readonly object _lock = new();
    private readonly NetlinkSocket _genl;
    private readonly ushort _family;
    private readonly string _ifName;
    private readonly bool _created;
    private readonly HashSet<WgKey> _known = [];
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _ifIndex;
    private WgKey _publicKey;
    private int _listenPort;
    private volatile bool _stopped;

    /// <param name="ifName">The link's name (1-15 bytes).</param>
    /// <param name="privateKey">Set on the device when given (not owned); otherwise the device keeps its own.</param>
    /// <param name="listenPort">Set when given (0 = a free port); null keeps the device's.</param>
    /// <param name="addresses">Added to the link (replacing equal ones).</param>
    /// <param name="mtu">Set on the link when given.</param>
    public KernelBackend(string ifName, WgPrivateKey? privateKey, int? listenPort, IReadOnlyList<IpPrefix>? addresses = null, int? mtu = null)
    {
        if (string.IsNullOrEmpty(ifName) || System.Text.Encoding.UTF8.GetByteCount(ifName) > 15 || ifName.Any(c => c is '/' or ' ' or ':' or '\0'))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidInterfaceName",
                $"'{ifName}' cannot be a kernel interface name: 1-15 bytes without '/', ':' or spaces.");
        if (!OperatingSystem.IsLinux())
            throw new WgException(WgErrorKind.InvalidOperation, "KernelBackendNotSupported", "Backend 'Kernel' needs Linux (the wireguard kernel module).");
        _ifName = ifName;
        _genl = new NetlinkSocket(NetlinkSocket.Generic);
        try
        {
            _family = ResolveFamily(_genl);
            using (var rt = new NetlinkSocket(NetlinkSocket.Route))
            {
                _ifIndex = RtLink.IndexOf(ifName);
                if (_ifIndex == 0)
                {
                    Check(rt.Ask(seq => RtLink.NewLinkRequest(ifName, seq)), "create the link");
                    _created = true;
                    _ifIndex = RtLink.IndexOf(ifName);
                }
                try
                {
                    WgPrivateKey? generated = null;
                    using (var before = Query())
                        if (privateKey is null && before.PrivateKey is null) privateKey = generated = WgPrivateKey.Generate();
                    try { Set(new KernelDeviceChange { PrivateKey = privateKey, ListenPort = listenPort }, "take the private key and listen port"); }
                    finally { generated?.Dispose(); }
                    if (mtu is not null) Check(rt.Ask(seq => RtLink.SetLinkRequest(_ifIndex, mtu, false, seq)), "set the MTU");
                    foreach (var a in addresses ?? [])
                        Check(rt.Ask(seq => RtLink.NewAddrRequest(_ifIndex, a, seq)), $"add address {a}");
                    Check(rt.Ask(seq => RtLink.SetLinkRequest(_ifIndex, null, true, seq)), "bring the link up");
                    using var after = Query();
                    _publicKey = after.PublicKey ?? throw new WgException(WgErrorKind.InvalidOperation, "KernelNoPrivateKey", $"Link '{ifName}' reports no key.");
                    _listenPort = after.ListenPort;
                    Fwmark = after.Fwmark;
                    foreach (var p in after.Peers) _known.Add(p.PublicKey);
                }
                catch
                {
                    if (_created) rt.Ask(seq => RtLink.DelLinkRequest(_ifIndex, seq));
                    throw;
                }
            }
        }
        catch
        {
            _genl.Dispose();
            throw;
        }
    }

    public string Kind => "Kernel";
    /// <summary>The kernel link's name.</summary>
    public string InterfaceName => _ifName;
    /// <summary>True when this backend created the link (and deletes it on Stop).</summary>
    public bool CreatedLink => _created;
    public WgKey PublicKey => _publicKey;
    public int ListenPort => _listenPort;
    public bool IsRunning => !_stopped;
    public Task Completion => _completion.Task;
    public uint Fwmark { get; private set; }

    public void AddPeer(PeerConfig peer)
    {
        lock (_lock)
        {
            EnsureRunning();
            if (_known.Contains(peer.PublicKey))
                throw new WgException(WgErrorKind.AlreadyExists, "PeerAlreadyExists", $"A peer with public key {peer.PublicKey} already exists on link '{_ifName}'.");
            Set(new KernelDeviceChange { Peers = [Change(peer, updateOnly: false)] }, "add the peer");
            _known.Add(peer.PublicKey);
        }
    }

    public void UpdatePeer(PeerConfig peer)
    {
        lock (_lock)
        {
            EnsureRunning();
            if (!_known.Contains(peer.PublicKey))
                throw new WgException(WgErrorKind.NotFound, "PeerNotFound", $"No peer with public key {peer.PublicKey} on link '{_ifName}'.");
            Set(new KernelDeviceChange { Peers = [Change(peer, updateOnly: true)] }, "update the peer");
        }
    }

    public bool RemovePeer(WgKey publicKey)
    {
        lock (_lock)
        {
            EnsureRunning();
            if (!_known.Contains(publicKey)) return false;
            Set(new KernelDeviceChange { Peers = [new DevicePeerChange { PublicKey = publicKey, Remove = true }] }, "remove the peer");
            _known.Remove(publicKey);
            return true;
        }
    }

    /// <summary>Adds or replaces many peers in as few messages as the kernel's size limit allows
    /// (each peer's allowed IPs replaced). A peer already there is updated in place.</summary>
    public void SetPeers(IReadOnlyList<PeerConfig> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        lock (_lock)
        {
            EnsureRunning();
            Set(new KernelDeviceChange { Peers = [.. peers.Select(p => Change(p, updateOnly: false))] }, "set the peers");
            foreach (var p in peers) _known.Add(p.PublicKey);
        }
    }

    /// <summary>Removes many peers in batched messages; returns how many were known.</summary>
    public int RemovePeers(IReadOnlyList<WgKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        lock (_lock)
        {
            EnsureRunning();
            var known = keys.Where(_known.Contains).Distinct().ToList();
            Set(new KernelDeviceChange { Peers = [.. known.Select(k => new DevicePeerChange { PublicKey = k, Remove = true })] }, "remove the peers");
            foreach (var k in known) _known.Remove(k);
            return known.Count;
        }
    }

    public PeerStatus? GetPeer(WgKey publicKey)
    {
        using var d = Query();
        return d.Peers.FirstOrDefault(p => p.PublicKey == publicKey) is { } p ? p.ToStatus() : null;
    }

    public IReadOnlyList<PeerStatus> GetPeers()
    {
        using var d = Query();
        return [.. d.Peers.Select(p => p.ToStatus())];
    }

    public IReadOnlyList<PeerConfig> ExportPeers()
    {
        using var d = Query();
        return [.. d.Peers.Select(p => p.ToConfig())];
    }

    /// <summary>The peers' counters summed; zeros once stopped or when the link is gone (a view must not throw).</summary>
    public InterfaceStats GetStats()
    {
        if (_stopped) return default;
        try
        {
            using var d = Query();
            return DevicePeer.SumStats(d.Peers);
        }
        catch (WgException) { return default; }
    }

    public void SetListenPort(int port)
    {
        if (port is < 0 or > 65535) throw new WgException(WgErrorKind.InvalidArgument, "InvalidListenPort", $"ListenPort {port} is outside 0-65535.");
        lock (_lock)
        {
            EnsureRunning();
            Set(new KernelDeviceChange { ListenPort = port }, "change its listen port");
            using var d = Query();
            _listenPort = d.ListenPort;
        }
    }

    public void SetFwmark(uint mark)
    {
        lock (_lock)
        {
            EnsureRunning();
            Set(new KernelDeviceChange { Fwmark = mark }, "change its fwmark");
            Fwmark = mark;
        }
    }

    public void SetPrivateKey(WgPrivateKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_lock)
        {
            EnsureRunning();
            Set(new KernelDeviceChange { PrivateKey = key }, "change its private key");
            using var d = Query();
            if (d.PublicKey is { } pub) _publicKey = pub;
            // The kernel drops a peer whose key equals the new public key, as wireguard-go does.
            _known.Clear();
            foreach (var p in d.Peers) _known.Add(p.PublicKey);
        }
    }

    /// <summary>Stops managing the link; deletes it when this backend created it. Idempotent.</summary>
    public void Stop()
    {
        lock (_lock)
        {
            if (_stopped) return;
            _stopped = true;
            if (_created)
            {
                try
                {
                    using var rt = new NetlinkSocket(NetlinkSocket.Route);
                    rt.Ask(seq => RtLink.DelLinkRequest(_ifIndex, seq));
                }
                catch (WgException) { /* already gone */ }
            }
            _genl.Dispose();
        }
        _completion.TrySetResult();
    }

    public void Dispose() => Stop();

    private void EnsureRunning()
    {
        if (_stopped) throw new WgException(WgErrorKind.InvalidOperation, "ServerStopped", $"The kernel backend of link '{_ifName}' has stopped.");
    }

    /// <summary>The backend's own checks, before any message: the kernel applies a batch message by message.</summary>
    private static DevicePeerChange Change(PeerConfig peer, bool updateOnly) => peer.PersistentKeepalive is < 0 or > 65535
        ? throw new WgException(WgErrorKind.InvalidArgument, "InvalidPersistentKeepalive", $"PersistentKeepalive {peer.PersistentKeepalive} is outside 0-65535 seconds.")
        : new()
    {
        PublicKey = peer.PublicKey, UpdateOnly = updateOnly, ReplaceAllowedIPs = true,
        PresharedKey = peer.PresharedKey ?? default(WgKey),   // zeros remove a previous one
        Endpoint = peer.Endpoint, PersistentKeepalive = peer.PersistentKeepalive, AllowedIPs = peer.AllowedIPs,
    };

    private void Set(KernelDeviceChange change, string what)
    {
        var messages = WgGenl.SetDeviceMessages(_family, _ifName, change);
        try
        {
            foreach (var w in messages)
            {
                uint seq = _genl.NextSeq();
                Check(_genl.Request(w.Finish(seq), seq, null), what);
                w.Clear();
            }
        }
        catch (WgException) when (messages.Count > 1)
        {
            // A later message failed after earlier ones were applied: learn what the kernel now holds.
            try
            {
                using var d = Query();
                _known.Clear();
                foreach (var p in d.Peers) _known.Add(p.PublicKey);
            }
            catch (WgException) { /* keep the old view; the original error is what matters */ }
            throw;
        }
        finally
        {
            foreach (var w in messages) w.Clear();
        }
    }

    private KernelDevice Query()
    {
        lock (_lock)
        {
            if (_stopped) throw new WgException(WgErrorKind.InvalidOperation, "ServerStopped", $"The kernel backend of link '{_ifName}' has stopped.");
            uint seq = _genl.NextSeq();
            var parts = new List<NetlinkMessage>();
            Check(_genl.Request(WgGenl.GetDeviceRequest(_family, _ifName, seq), seq, parts), "report its configuration");
            var device = new KernelDevice();
            var byKey = new Dictionary<WgKey, DevicePeer>();
            try
            {
                foreach (var m in parts) WgGenl.ParseDeviceMessage(m, device, byKey);
            }
            catch (FormatException e)
            {
                device.Dispose();
                throw NetlinkSocket.BadAnswer(e);
            }
            return device;
        }
    }

    private static ushort ResolveFamily(NetlinkSocket s)
    {
        uint seq = s.NextSeq();
        var answers = new List<NetlinkMessage>();
        int errno = s.Request(WgGenl.GetFamilyRequest(seq), seq, answers);
        if (errno == -KernelErrno.ENOENT || (errno == 0 && answers.Count == 0))
            throw new WgException(WgErrorKind.ResourceUnavailable, "KernelModuleMissing",
                "The kernel has no WireGuard generic netlink family: load the module first (modprobe wireguard) or use -Backend Userspace.");
        if (errno != 0) throw KernelErrno.ToException(errno, "resolve the wireguard netlink family", "kernel");
        try { return WgGenl.ParseFamilyId(answers[0]); }
        catch (FormatException e) { throw NetlinkSocket.BadAnswer(e); }
    }

    private void Check(int errno, string what)
    {
        if (errno != 0) throw KernelErrno.ToException(errno, what, _ifName);
    }
}

/// <summary>The errnos the kernel answers (asm-generic/errno-base.h, errno.h) and their WgException mapping.</summary>
internal static class KernelErrno
{
    public const int EPERM = 1, ENOENT = 2, EEXIST = 17, ENODEV = 19, EINVAL = 22, ERANGE = 34, EMSGSIZE = 90, EOPNOTSUPP = 95, EADDRINUSE = 98;

    public static WgException ToException(int errno, string what, string ifName) => -errno switch
    {
        EPERM => new(WgErrorKind.InvalidOperation, "KernelNotPermitted",
            $"The kernel refused to {what} on '{ifName}': not permitted (errno {EPERM}); the kernel backend needs CAP_NET_ADMIN."),
        ENODEV => new(WgErrorKind.ResourceUnavailable, "KernelDeviceNotFound", $"The kernel could not {what}: no WireGuard link '{ifName}' (errno {ENODEV})."),
        EADDRINUSE => new(WgErrorKind.ResourceUnavailable, "ListenPortInUse", $"The kernel could not {what} on '{ifName}': errno {EADDRINUSE} (address in use)."),
        EOPNOTSUPP => new(WgErrorKind.ResourceUnavailable, "KernelModuleMissing",
            $"The kernel could not {what} on '{ifName}': link kind 'wireguard' not supported (errno {EOPNOTSUPP}); load the wireguard module."),
        EEXIST => new(WgErrorKind.AlreadyExists, "KernelLinkExists", $"The kernel could not {what}: '{ifName}' exists (errno {EEXIST})."),
        _ => new(WgErrorKind.InvalidArgument, "KernelSetFailed", $"The kernel refused to {what} on '{ifName}': errno {-errno}."),
    };
}
