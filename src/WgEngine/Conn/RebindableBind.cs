using System.Net;

namespace WgEngine.Conn;

/// <summary>
/// A <see cref="UdpBind"/> that can move to another port (UAPI listen_port) or take a firewall mark
/// (UAPI fwmark) while the device runs. The device's receive thread keeps calling Receive: when the
/// socket under it is replaced, the call that was woken by closing the old socket simply retries on
/// the new one. Endpoints stay valid: the new socket has the same address family and dual-stack mode.
/// </summary>
internal sealed class RebindableBind : IBind
{
    private readonly IPAddress? _bindAddress;
    private readonly bool _nativeBatching;
    private bool _udpGro, _udpSegmentation = true;   // asked-for offloads, applied to every new socket
    private readonly object _lock = new();
    private volatile UdpBind _inner;
    private volatile bool _closed;

    public RebindableBind(int port, IPAddress? bindAddress = null, bool nativeBatching = true, bool udpGro = true)
    {
        _bindAddress = bindAddress;
        _nativeBatching = nativeBatching;
        _udpGro = udpGro;
        _inner = new UdpBind(port, bindAddress, nativeBatching, udpGro);
    }

    public int Port => _inner.Port;

    /// <summary>SO_MARK applied to the socket (and to every later one); 0 = none.</summary>
    public uint Mark { get; private set; }

    /// <summary>Binds a new socket on <paramref name="port"/> (0 = any) and then closes the old one.
    /// On failure (port in use) the old socket stays. A SocketException propagates.</summary>
    public void Rebind(int port)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            var fresh = new UdpBind(port, _bindAddress, _nativeBatching, _udpGro) { UdpSegmentation = _udpSegmentation };
            try
            {
                if (Mark != 0) fresh.SetMark(Mark);
            }
            catch
            {
                fresh.Dispose();
                throw;
            }
            var old = _inner;
            _inner = fresh;      // publish before closing, so the woken receiver finds the new socket
            old.Dispose();
            _coalescedOnOldSockets += old.CoalescedDatagrams;
        }
    }

    /// <summary>UDP GSO on send (see <see cref="UdpBind.UdpSegmentation"/>); the choice survives Rebind.</summary>
    public bool UdpSegmentation
    {
        get => _inner.UdpSegmentation;
        set
        {
            lock (_lock)
            {
                _udpSegmentation = value;
                _inner.UdpSegmentation = value;
            }
        }
    }

    /// <summary>UDP GRO on receive (see <see cref="UdpBind.UdpGro"/>); the choice survives Rebind.</summary>
    public bool UdpGro
    {
        get => _inner.UdpGro;
        set
        {
            lock (_lock)
            {
                _udpGro = value;
                _inner.UdpGro = value;
            }
        }
    }

    /// <summary>Datagrams received coalesced (UDP GRO) and split, on this socket and the ones it replaced
    /// (see <see cref="UdpBind.CoalescedDatagrams"/>): a counter that only grows.</summary>
    public long CoalescedDatagrams
    {
        get { lock (_lock) return _coalescedOnOldSockets + _inner.CoalescedDatagrams; }
    }
    private long _coalescedOnOldSockets;   // written under _lock

    /// <summary>Sets SO_MARK (Linux; needs CAP_NET_ADMIN).</summary>
    public void SetMark(uint mark)
    {
        lock (_lock)
        {
            _inner.SetMark(mark);
            Mark = mark;
        }
    }

    public int Receive(Span<byte> buffer, System.Net.SocketAddress from)
    {
        int size = from.Size;
        while (!_closed)
        {
            var current = _inner;
            int n = current.Receive(buffer, from);
            if (n >= 0) return n;
            if (ReferenceEquals(current, _inner)) return -1;   // closed for good, not replaced
            from.Size = size;                                   // the aborted call may have shrunk it
        }
        return -1;
    }

    public int ReceiveBatch(ReadOnlySpan<Memory<byte>> buffers, ReadOnlySpan<System.Net.SocketAddress> from, Span<int> lengths)
    {
        int size = from[0].Size;
        while (!_closed)
        {
            var current = _inner;
            int n = current.ReceiveBatch(buffers, from, lengths);
            if (n >= 0) return n;
            if (ReferenceEquals(current, _inner)) return -1;
            from[0].Size = size;
        }
        return -1;
    }

    public int SendBatch(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, ReadOnlySpan<System.Net.SocketAddress> to, Span<bool> sent) =>
        _inner.SendBatch(datagrams, to, sent);

    /// <summary>True while the current socket moves datagrams with recvmmsg/sendmmsg.</summary>
    public bool NativeBatching => _inner.NativeBatching;

    public bool Send(ReadOnlySpan<byte> datagram, System.Net.SocketAddress to) => _inner.Send(datagram, to);

    public System.Net.SocketAddress ToSocketAddress(IPEndPoint endpoint) => _inner.ToSocketAddress(endpoint);

    public IPEndPoint ToEndPoint(System.Net.SocketAddress address) => _inner.ToEndPoint(address);

    public void Dispose()
    {
        lock (_lock)
        {
            _closed = true;
            _inner.Dispose();
        }
    }
}
