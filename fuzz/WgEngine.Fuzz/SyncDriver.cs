using System.Net;
using WgEngine.Crypto;
using WgEngine.Device;

namespace WgEngine.Fuzz;

/// <summary>
/// Drives an unstarted <see cref="WgDevice"/> on the calling thread: a datagram goes through the real
/// Dispatch (classification, mac1), then whatever it queued is processed here by the same internal
/// methods the worker and handshake threads call (WgDevice.DrainQueuesOnThisThread), without reflection.
/// </summary>
internal sealed class SyncDriver(WgDevice device)
{
    public IndexTable Indices => device.Indices;

    public Peer Peer(WgKey publicKey) => device.PeerOf(publicKey);

    /// <summary>One datagram from <paramref name="from"/> through Dispatch and the processing it queues.</summary>
    public void Receive(ReadOnlySpan<byte> datagram, SocketAddress from)
    {
        var buf = new PacketBuffer();
        int n = Math.Min(datagram.Length, PacketBuffer.Capacity); // the bind truncates to the buffer
        datagram[..n].CopyTo(buf.Data);
        buf.Length = n;
        from.Buffer.Span[..from.Size].CopyTo(buf.Address.Buffer.Span);
        buf.Address.Size = from.Size;
        device.Dispatch(buf);
        device.DrainQueuesOnThisThread(process: true);
    }

    /// <summary>Empties the queues without processing (state reset between inputs).</summary>
    public void Discard() => device.DrainQueuesOnThisThread(process: false);
}
