using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace WgEngine.Conn;

/// <summary>
/// An in-memory bind for tests and benchmarks: a set of endpoints on a private "network" that
/// deliver datagrams to each other through queues, with optional loss. No sockets involved.
/// </summary>
internal sealed class ChannelNetwork
{
    private readonly ConcurrentDictionary<IPEndPoint, ChannelBind> _binds = new();

    /// <summary>Creates a bind reachable at 127.0.0.1:port on this network.</summary>
    public ChannelBind CreateBind(int port)
    {
        var bind = new ChannelBind(this, new IPEndPoint(IPAddress.Loopback, port));
        if (!_binds.TryAdd(bind.LocalEndPoint, bind)) throw new InvalidOperationException($"Port {port} taken.");
        return bind;
    }

    /// <summary>When set, returns true for datagrams to drop (from, to, bytes).</summary>
    public Func<IPEndPoint, IPEndPoint, byte[], bool>? Drop { get; set; }

    internal void Deliver(IPEndPoint from, IPEndPoint to, ReadOnlySpan<byte> datagram)
    {
        if (!_binds.TryGetValue(to, out var target)) return;
        var copy = datagram.ToArray();
        if (Drop?.Invoke(from, to, copy) == true) return;
        target.Enqueue(copy, from);
    }

    internal void Remove(ChannelBind bind) => _binds.TryRemove(bind.LocalEndPoint, out _);
}

internal sealed class ChannelBind : IBind
{
    private readonly ChannelNetwork _network;
    private readonly BlockingCollection<(byte[] Data, IPEndPoint From)> _inbox = new();

    internal ChannelBind(ChannelNetwork network, IPEndPoint local)
    {
        _network = network;
        LocalEndPoint = local;
    }

    public IPEndPoint LocalEndPoint { get; }
    public int Port => LocalEndPoint.Port;

    /// <summary>Injects a datagram as if it came from <paramref name="from"/> (for malformed-input tests).</summary>
    public void Enqueue(byte[] data, IPEndPoint from)
    {
        try { _inbox.Add((data, from)); } catch (InvalidOperationException) { }
    }

    // 1 from the moment the receive loop took a datagram until it asks for the next one: by then the
    // device has dispatched it (queued to a worker or processed inline).
    private int _held;

    /// <summary>Nothing waits in the inbox and the receive loop holds no datagram (tests: a quiescent network).</summary>
    internal bool IsDrained => _inbox.Count == 0 && Volatile.Read(ref _held) == 0;

    public int Receive(Span<byte> buffer, SocketAddress from)
    {
        Volatile.Write(ref _held, 0);
        try
        {
            var (data, src) = _inbox.Take();
            Volatile.Write(ref _held, 1);
            var sa = src.Serialize();
            sa.Buffer.Span[..sa.Size].CopyTo(from.Buffer.Span);
            from.Size = sa.Size;
            int n = Math.Min(data.Length, buffer.Length);
            data.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        catch (InvalidOperationException)
        {
            return -1;
        }
    }

    public bool Send(ReadOnlySpan<byte> datagram, SocketAddress to)
    {
        _network.Deliver(LocalEndPoint, ToEndPoint(to), datagram);
        return true;
    }

    public SocketAddress ToSocketAddress(IPEndPoint endpoint) => endpoint.Serialize();

    public IPEndPoint ToEndPoint(SocketAddress address) =>
        (IPEndPoint)new IPEndPoint(address.Family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0).Create(address);

    public void Dispose()
    {
        _network.Remove(this);
        _inbox.CompleteAdding();
    }
}
