using System.Collections.Concurrent;
using System.Net;
using System.Reflection;
using WgEngine.Crypto;
using WgEngine.Device;

namespace WgEngine.Fuzz;

/// <summary>
/// Drives an unstarted <see cref="WgDevice"/> on the calling thread: a datagram goes through the real
/// Dispatch (classification, mac1), then whatever it queued is processed here by the same internal
/// methods the worker and handshake threads call. The device keeps its queues and tables private, so
/// they are reached once by reflection; a rename in the engine fails loudly at construction.
/// </summary>
internal sealed class SyncDriver
{
    private static readonly FieldInfo PeersField = Field(typeof(WgDevice), "_peers");
    private static readonly FieldInfo IndicesField = Field(typeof(WgDevice), "_indices");
    private static readonly FieldInfo WorkersField = Field(typeof(WgDevice), "_workers");
    private static readonly FieldInfo HandshakesField = Field(typeof(WgDevice), "_handshakes");
    private static readonly FieldInfo QueueField = Field(typeof(Worker).BaseType!, "_queue");
    private static readonly FieldInfo CountField = Field(typeof(Worker).BaseType!, "_count");

    private readonly WgDevice _device;
    private readonly object[] _queues;

    public SyncDriver(WgDevice device)
    {
        _device = device;
        var workers = (Array)WorkersField.GetValue(device)!;
        _queues = [.. workers.Cast<object>(), HandshakesField.GetValue(device)!];
        Indices = (IndexTable)IndicesField.GetValue(device)!;
    }

    public IndexTable Indices { get; }

    public Peer Peer(WgKey publicKey) => ((ConcurrentDictionary<WgKey, Peer>)PeersField.GetValue(_device)!)[publicKey];

    /// <summary>One datagram from <paramref name="from"/> through Dispatch and the processing it queues.</summary>
    public void Receive(ReadOnlySpan<byte> datagram, SocketAddress from)
    {
        var buf = new PacketBuffer();
        int n = Math.Min(datagram.Length, PacketBuffer.Capacity); // the bind truncates to the buffer
        datagram[..n].CopyTo(buf.Data);
        buf.Length = n;
        from.Buffer.Span[..from.Size].CopyTo(buf.Address.Buffer.Span);
        buf.Address.Size = from.Size;
        _device.Dispatch(buf);
        foreach (var q in _queues) Drain(q, process: true);
    }

    /// <summary>Empties the queues without processing (state reset between inputs).</summary>
    public void Discard()
    {
        foreach (var q in _queues) Drain(q, process: false);
    }

    private void Drain(object queueThread, bool process)
    {
        var queue = (ConcurrentQueue<PacketBuffer>)QueueField.GetValue(queueThread)!;
        while (queue.TryDequeue(out var buf))
        {
            CountField.SetValue(queueThread, Math.Max(0, (int)CountField.GetValue(queueThread)! - 1));
            if (!process) continue;
            if (queueThread is Worker) _device.ProcessTransport(buf);
            else _device.ProcessHandshakeMessage(buf);
        }
    }

    private static FieldInfo Field(Type t, string name) =>
        t.GetField(name, BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException(t.FullName, name);
}
