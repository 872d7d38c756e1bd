using System.Net;

namespace WgEngine.Device;

/// <summary>
/// Transport packets a thread has framed (counter taken, header and padding written) but not yet sealed and
/// sent. The thread flushes them when its queue runs empty or the batch is full: it seals them all, on several
/// cores when the batch is large (<see cref="CryptoHelperPool"/>), then sends them in one
/// <see cref="Conn.IBind.SendBatch"/> call (sendmmsg on Linux) instead of one system call per packet. One per
/// thread; never shared, except with the sealer's helpers during a flush.
/// </summary>
internal sealed class OutgoingBatch(WgDevice owner) : IRangeJob
{
    /// <summary>
    /// Room for one TSO super-packet read from the TUN: 64 KiB at MTU 1420 is 44-46 segments, which then
    /// leave in one GSO send (UdpBind.GsoRunEnd takes up to 64 segments and 65,000 bytes per run). With 32,
    /// every super-packet was cut into two sends (issue 15, item 2; wireguard-go batches up to 128).
    /// </summary>
    public const int Size = 64;

    public readonly WgDevice Owner = owner;
    public readonly PacketBuffer[] Buffers = new PacketBuffer[Size];
    public readonly ReadOnlyMemory<byte>[] Datagrams = new ReadOnlyMemory<byte>[Size];
    public readonly SocketAddress[] To = new SocketAddress[Size];
    public readonly Peer[] Peers = new Peer[Size];
    public readonly bool[] CarriesData = new bool[Size];
    public readonly bool[] Sent = new bool[Size];
    private readonly Session.Keypair?[] _keypairs = new Session.Keypair?[Size];
    private readonly ulong[] _counters = new ulong[Size];
    private readonly int[] _padded = new int[Size];
    public int Count;

    public bool IsFull => Count == Size;

    /// <summary>Adds a framed transport packet (<paramref name="length"/>: its length once sealed) that <see cref="Seal"/>
    /// will seal with <paramref name="keypair"/> under <paramref name="counter"/>; without a keypair, a datagram that
    /// is complete as it is (a handshake message).</summary>
    public void Add(PacketBuffer buf, int length, SocketAddress to, Peer peer, bool carriesData, Session.Keypair? keypair = null, ulong counter = 0, int padded = 0)
    {
        int i = Count++;
        _keypairs[i] = keypair;
        _counters[i] = counter;
        _padded[i] = padded;
        Buffers[i] = buf;
        Datagrams[i] = new ReadOnlyMemory<byte>(buf.Data, 0, length);
        To[i] = to;
        Peers[i] = peer;
        CarriesData[i] = carriesData;
    }

    /// <summary>Seals the packets in slots [from, to). Any thread may seal a range; ranges must not overlap.</summary>
    public void Seal(int from, int to)
    {
        for (int i = from; i < to; i++)
            _keypairs[i]?.SealFramed(_counters[i], Buffers[i].Data, _padded[i]);
    }

    void IRangeJob.Run(int from, int to) => Seal(from, to);

    /// <summary>Forgets the references of the sent batch (buffers went back to the pool).</summary>
    public void Clear()
    {
        Array.Clear(_keypairs, 0, Count);
        Array.Clear(Buffers, 0, Count);
        Array.Clear(Datagrams, 0, Count);
        Array.Clear(To, 0, Count);
        Array.Clear(Peers, 0, Count);
        Count = 0;
    }
}
