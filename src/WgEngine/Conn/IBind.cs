using System.Net;
using System.Net.Sockets;

namespace WgEngine.Conn;

/// <summary>
/// The datagram transport under the device (wireguard-go's conn.Bind). Addresses are SocketAddress
/// objects so that the data path can receive and send without allocating.
/// </summary>
internal interface IBind : IDisposable
{
    /// <summary>The local port (never 0 once bound).</summary>
    int Port { get; }

    /// <summary>Blocks until a datagram arrives; writes its source into <paramref name="from"/>. Returns -1 once closed.</summary>
    int Receive(Span<byte> buffer, SocketAddress from);

    /// <summary>Sends one datagram; errors (unreachable, no buffer) are swallowed and counted by the caller as drops.</summary>
    bool Send(ReadOnlySpan<byte> datagram, SocketAddress to);

    /// <summary>
    /// Receives up to buffers.Length datagrams (at least one; blocks for the first): datagram i goes to
    /// buffers[i], its source to from[i], its length to lengths[i]. Returns the count, or -1 once closed.
    /// The default receives one; batching binds (UdpBind on Linux) fill many per system call.
    /// </summary>
    int ReceiveBatch(ReadOnlySpan<Memory<byte>> buffers, ReadOnlySpan<SocketAddress> from, Span<int> lengths)
    {
        int n = Receive(buffers[0].Span, from[0]);
        if (n < 0) return -1;
        lengths[0] = n;
        return 1;
    }

    /// <summary>
    /// Sends datagrams[i] to to[i] for each i; sent[i] says whether that one left (errors are per datagram,
    /// as with Send). Returns how many left. The default loops over Send.
    /// </summary>
    int SendBatch(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, ReadOnlySpan<SocketAddress> to, Span<bool> sent)
    {
        int ok = 0;
        for (int i = 0; i < datagrams.Length; i++)
            if (sent[i] = Send(datagrams[i].Span, to[i])) ok++;
        return ok;
    }

    /// <summary>The SocketAddress form this bind uses for an endpoint (e.g. v4-mapped for a dual-stack socket).</summary>
    SocketAddress ToSocketAddress(IPEndPoint endpoint);

    /// <summary>The endpoint a SocketAddress denotes, IPv4 shown as IPv4.</summary>
    IPEndPoint ToEndPoint(SocketAddress address);
}
