using System.Net;
using System.Net.Sockets;

namespace WgEngine.Conn;

/// <summary>
/// The datagram transport under the device (wireguard-go's conn.Bind). Addresses are SocketAddress
/// objects so that the data path can receive and send without allocating.
/// </summary>
public interface IBind : IDisposable
{
    /// <summary>The local port (never 0 once bound).</summary>
    int Port { get; }

    /// <summary>Blocks until a datagram arrives; writes its source into <paramref name="from"/>. Returns -1 once closed.</summary>
    int Receive(Span<byte> buffer, SocketAddress from);

    /// <summary>Sends one datagram; errors (unreachable, no buffer) are swallowed and counted by the caller as drops.</summary>
    bool Send(ReadOnlySpan<byte> datagram, SocketAddress to);

    /// <summary>The SocketAddress form this bind uses for an endpoint (e.g. v4-mapped for a dual-stack socket).</summary>
    SocketAddress ToSocketAddress(IPEndPoint endpoint);

    /// <summary>The endpoint a SocketAddress denotes, IPv4 shown as IPv4.</summary>
    IPEndPoint ToEndPoint(SocketAddress address);
}
