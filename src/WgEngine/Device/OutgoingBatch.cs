using System.Net;

namespace WgEngine.Device;

/// <summary>
/// Sealed transport packets a crypto worker has produced but not yet sent. The worker flushes them in
/// one <see cref="Conn.IBind.SendBatch"/> call (sendmmsg on Linux) when its queue runs empty or the
/// batch is full, instead of one system call per packet. One per worker thread; never shared.
/// </summary>
internal sealed class OutgoingBatch(WgDevice owner)
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
    public int Count;

    public bool IsFull => Count == Size;

    public void Add(PacketBuffer buf, int length, SocketAddress to, Peer peer, bool carriesData)
    {
        int i = Count++;
        Buffers[i] = buf;
        Datagrams[i] = new ReadOnlyMemory<byte>(buf.Data, 0, length);
        To[i] = to;
        Peers[i] = peer;
        CarriesData[i] = carriesData;
    }

    /// <summary>Forgets the references of the sent batch (buffers went back to the pool).</summary>
    public void Clear()
    {
        Array.Clear(Buffers, 0, Count);
        Array.Clear(Datagrams, 0, Count);
        Array.Clear(To, 0, Count);
        Array.Clear(Peers, 0, Count);
        Count = 0;
    }
}
