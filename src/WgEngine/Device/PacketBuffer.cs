using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using WgEngine.Session;

namespace WgEngine.Device;

/// <summary>
/// A reusable datagram buffer with room for the largest message we handle, the source/destination
/// address it came from or goes to, and the keypair the receive path resolved. Pooled: steady state
/// allocates nothing.
/// </summary>
internal sealed class PacketBuffer
{
    /// <summary>Largest datagram handled; a larger one is truncated and fails authentication.</summary>
    public const int Capacity = 4096;

    public readonly byte[] Data = new byte[Capacity];
    public readonly SocketAddress Address = new(AddressFamily.InterNetworkV6);
    public int Length;
    public Keypair? Keypair;
    /// <summary>The peer the keypair belongs to (set with it on receive).</summary>
    public Peer? Peer;

    public Span<byte> Span => Data.AsSpan(0, Length);
}

/// <summary>A bounded free list of packet buffers.</summary>
internal sealed class PacketBufferPool
{
    private readonly ConcurrentQueue<PacketBuffer> _free = new();
    private readonly int _max;
    private int _count;

    public PacketBufferPool(int max, int preallocate = 0)
    {
        _max = max;
        for (int i = 0; i < Math.Min(preallocate, max); i++) Return(new PacketBuffer());
    }

    public PacketBuffer Rent()
    {
        if (_free.TryDequeue(out var b))
        {
            Interlocked.Decrement(ref _count);
            return b;
        }
        Interlocked.Increment(ref _created);
        return new PacketBuffer();
    }

    private long _created;

    /// <summary>Buffers made so far: grows only until the deepest backlog has been seen.</summary>
    public long Created => Volatile.Read(ref _created);

    public void Return(PacketBuffer buffer)
    {
        buffer.Keypair = null;
        buffer.Peer = null;
        buffer.Length = 0;
        if (Interlocked.Increment(ref _count) <= _max) _free.Enqueue(buffer);
        else Interlocked.Decrement(ref _count);
    }
}
