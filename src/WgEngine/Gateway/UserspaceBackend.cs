using System.Net.Sockets;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Egress;

namespace WgEngine.Gateway;

/// <summary>The in-process engine: a <see cref="WgDevice"/> on a UDP socket. Needs no privileges.</summary>
internal sealed class UserspaceBackend : IWireGuardBackend, IDeviceSettings, IMetricsSource
{
    private readonly WgDevice _device;
    private readonly RebindableBind? _rebindable;   // null with a test bind: port and mark then fixed
    private readonly UserspaceEgress? _egress;      // owned: built here for EgressMode.Userspace

    /// <summary>The TCP part of the userspace egress (<see cref="Egress.Tcp.TcpEgress"/>); null counts TCP as unsupported.</summary>
    internal static TcpEgressFactory? TcpFactory { get; set; } = (s, o, c) => new Egress.Tcp.TcpEgress(s, o, c);

    public UserspaceBackend(InterfaceConfig config) : this(config, CreateBind(config)) { }

    /// <summary>With a given bind (e.g. an in-memory one in tests).</summary>
    public UserspaceBackend(InterfaceConfig config, IBind bind, IEgress? egress = null)
    {
        _rebindable = bind as RebindableBind;
        LateBoundPacketSink? sink = null;
        try
        {
            if (egress is null && config.Egress != EgressMode.None)
            {
                sink = new LateBoundPacketSink();
                if (config.Egress == EgressMode.Tun)
                {
                    // A TUN named after the server, carrying its addresses: the host's routing and NAT take over.
                    egress = _tun = Tun.TunEgress.Create(config.Name ?? "", config.Addresses, config.Mtu, sink);
                }
                else
                {
                    egress = _egress = new UserspaceEgress(sink, config.EgressOptions ?? new EgressOptions { TimeProvider = config.TimeProvider },
                        TcpFactory, config.Addresses, log: config.Log);
                }
            }
            _device = new WgDevice(config.PrivateKey, bind, new DeviceOptions
            {
                TimeProvider = config.TimeProvider,
                Mtu = config.Mtu,
                Addresses = config.Addresses,
                Egress = egress,
                QuotaExhausted = config.QuotaExhausted,
                Policy = config.PeerIsolation || config.TagRules is { Count: > 0 }
                    ? new Policy.TrafficPolicy(config.TimeProvider, config.PeerIsolation, config.TagRules) : null,
            });
        }
        catch
        {
            _egress?.Dispose();
            _tun?.Dispose();
            bind.Dispose();
            throw;
        }
        sink?.Attach(_device);
        _device.Start();
    }

    private readonly Tun.TunEgress? _tun;
    /// <summary>The TUN egress when <see cref="EgressMode.Tun"/> (its interface name and counters), else null.</summary>
    public Tun.TunEgress? TunEgress => _tun;

    private static IBind CreateBind(InterfaceConfig config)
    {
        try
        {
            return new RebindableBind(config.ListenPort, config.BindAddress);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
        {
            throw PortError(config.ListenPort, e);
        }
    }

    private static WgException PortError(int port, SocketException e) =>
        new(WgErrorKind.ResourceUnavailable, "ListenPortInUse",
            e.SocketErrorCode == SocketError.AccessDenied
                ? $"Not allowed to bind UDP port {port}; pick another -ListenPort, or 0 for a free one."
                : $"UDP port {port} is already in use; pick another -ListenPort, or 0 for a free one.", e);

    public uint Fwmark => _rebindable?.Mark ?? 0;

    public void SetListenPort(int port)
    {
        if (_rebindable is null) throw NotRebindable();
        try { _rebindable.Rebind(port); }
        catch (SocketException e) { throw PortError(port, e); }
    }

    public void SetFwmark(uint mark)
    {
        if (_rebindable is null) throw NotRebindable();
        try { _rebindable.SetMark(mark); }
        catch (Exception e) when (e is SocketException or PlatformNotSupportedException)
        {
            throw new WgException(WgErrorKind.ResourceUnavailable, "FwmarkFailed", $"Could not set fwmark {mark} on the UDP socket: {e.Message}", e);
        }
    }

    public void SetPrivateKey(WgPrivateKey key) => _device.SetPrivateKey(key);

    private static WgException NotRebindable() =>
        new(WgErrorKind.InvalidOperation, "BindNotRebindable", "This engine's transport cannot change its port or mark.");

    public string Kind => "Userspace";
    public WgKey PublicKey => _device.PublicKey;
    public int ListenPort => _device.ListenPort;
    public bool IsRunning => _device.IsRunning;
    public Task Completion => _device.Completion;
    /// <summary>The engine itself, for diagnostics and tests (drop counters).</summary>
    public WgDevice Device => _device;

    public void AddPeer(PeerConfig peer) => _device.AddPeer(peer);
    public void UpdatePeer(PeerConfig peer) => _device.UpdatePeer(peer);
    public bool RemovePeer(WgKey publicKey) => _device.RemovePeer(publicKey);
    public PeerStatus? GetPeer(WgKey publicKey) => _device.GetPeer(publicKey);
    public IReadOnlyList<PeerStatus> GetPeers() => _device.GetPeers();
    public InterfaceStats GetStats()
    {
        var c = _device.Counters;
        return new(c.Received, c.Sent, c.TotalDropped, c.Handshakes, c.CookieReplies, c.RateLimited, c.HandshakeInvalid);
    }
    public ServerMetrics GetMetrics()
    {
        var c = _device.Counters;
        return new ServerMetrics
        {
            ReceivedBytes = c.Received, SentBytes = c.Sent, HandshakesCompleted = c.Handshakes,
            CookieRepliesSent = c.CookieReplies, IcmpEchoReplies = c.EchoReplies, Drops = c.DropsByReason(),
            SendBatches = c.SendBatches, SentInBatches = c.SentInBatches, ReceiveBatches = c.ReceiveBatches, ReceivedInBatches = c.ReceivedInBatches,
            ReceivedCoalesced = _rebindable?.CoalescedDatagrams ?? 0, InlineReceiveBatches = c.InlineReceiveBatches,
            ParallelSealBatches = _device.ParallelSealBatches, ParallelOpenBatches = _device.ParallelOpenBatches,
            Egress = _egress?.Counters.Snapshot(), Tun = _tun?.Counters.Snapshot(), Policy = _device.Policy.CounterSnapshot(),
        };
    }

    /// <summary>What the userspace egress did and refused; null when this backend has none.</summary>
    public EgressCounters? EgressCounters => _egress?.Counters;
    /// <summary>The userspace egress, for diagnostics and tests; null when this backend has none.</summary>
    public UserspaceEgress? Egress => _egress;

    public void Stop()
    {
        _egress?.Dispose();   // first: no host socket hands a reply to a stopping device
        _device.Stop();
        _tun?.Dispose();      // after the device: closing the fd removes the interface
    }

    public void Dispose() => Stop();
}
