using System.Net;
using System.Net.Sockets;

namespace WgEngine.Conn;

/// <summary>
/// The portable bind: one dual-stack UDP socket (IPv6 with IPv4-mapped addresses) unless a specific
/// IPv4 bind address is asked for. On Linux datagrams move in batches (UdpBind.Batch.cs).
/// </summary>
internal sealed partial class UdpBind : IBind
{
    private readonly Socket _socket;
    private readonly SafeSocketHandle _handle;
    private readonly bool _nativeBatching;
    private readonly bool _dualStack;
    private volatile bool _closed;

    /// <param name="nativeBatching">Use recvmmsg/sendmmsg where available (Linux); false: one Socket call per datagram.</param>
    /// <param name="udpGro">Ask for receive-side UDP GRO (with native batching, where the kernel has it); false: never set.</param>
    public UdpBind(int port, IPAddress? bindAddress = null, bool nativeBatching = true, bool udpGro = true)
    {
        _nativeBatching = nativeBatching;
        bindAddress ??= IPAddress.IPv6Any;
        _dualStack = bindAddress.AddressFamily == AddressFamily.InterNetworkV6;
        _socket = new Socket(bindAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (_dualStack) _socket.DualMode = true;
            _socket.ReceiveBufferSize = 4 << 20;
            _socket.SendBufferSize = 4 << 20;
            _socket.Bind(new IPEndPoint(bindAddress, port));
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
        Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
        _handle = _socket.SafeHandle;
        if (udpGro) UdpGro = true;   // stays false where the kernel refuses the option
    }

    public int Port { get; }

    /// <summary>Sets SO_MARK on the socket (Linux only; needs CAP_NET_ADMIN). Value source: linux/asm-generic/socket.h.</summary>
    public void SetMark(uint mark)
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("fwmark (SO_MARK) exists only on Linux.");
        const int SolSocket = 1, SoMark = 36;
        Span<byte> value = stackalloc byte[4];
        BitConverter.TryWriteBytes(value, mark);
        _socket.SetRawSocketOption(SolSocket, SoMark, value);
    }

    public int Receive(Span<byte> buffer, SocketAddress from)
    {
        if (_groReceive && NativeBatching && !_closed)
        {
            int r = ReceiveOneGro(buffer, from);   // coalesced datagrams must be split, not truncated
            if (r != -2) return r;
        }
        while (!_closed)
        {
            try
            {
                int n = _socket.ReceiveFrom(buffer, SocketFlags.None, from);
                return _closed ? -1 : n;
            }
            catch (SocketException e) when (!_closed && e.SocketErrorCode is SocketError.ConnectionReset
                                                or SocketError.MessageSize or SocketError.NetworkReset
                                                or SocketError.HostUnreachable or SocketError.NetworkUnreachable
                                                or SocketError.ConnectionRefused)
            {
                // ICMP errors for earlier sends and oversized datagrams: not fatal for a UDP server.
            }
            catch (Exception) when (_closed)
            {
                break;
            }
        }
        return -1;
    }

    public bool Send(ReadOnlySpan<byte> datagram, SocketAddress to)
    {
        try
        {
            _socket.SendTo(datagram, SocketFlags.None, to);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    public SocketAddress ToSocketAddress(IPEndPoint endpoint)
    {
        if (_dualStack && endpoint.AddressFamily == AddressFamily.InterNetwork)
            endpoint = new IPEndPoint(endpoint.Address.MapToIPv6(), endpoint.Port);
        return endpoint.Serialize();
    }

    public IPEndPoint ToEndPoint(SocketAddress address)
    {
        var ep = (IPEndPoint)new IPEndPoint(address.Family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0).Create(address);
        return ep.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(ep.Address.MapToIPv4(), ep.Port) : ep;
    }

    public void Dispose()
    {
        if (_closed) return;
        _closed = true;
        // Shutdown wakes a thread blocked in ReceiveFrom on Linux; Dispose alone may not.
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
        _socket.Dispose();
    }
}
