using System.Collections.Concurrent;

namespace WgEngine.Device;

/// <summary>A dedicated thread draining a queue of packet buffers. Bounded: a full queue drops.</summary>
internal abstract class QueueThread
{
    private readonly ConcurrentQueue<PacketBuffer> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly string _name;
    private readonly int _capacity;
    private Thread? _thread;
    private volatile bool _stopping;
    private int _count;

    protected QueueThread(string name, int capacity)
    {
        _name = name;
        _capacity = capacity;
    }

    public int Count => Volatile.Read(ref _count);

    /// <summary>Bytes this thread has allocated so far (sampled after each item): proves the data path allocation-free.</summary>
    public long AllocatedBytes => Volatile.Read(ref _allocated);
    private long _allocated;

    public bool TryEnqueue(PacketBuffer buffer)
    {
        if (Interlocked.Increment(ref _count) > _capacity)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }
        _queue.Enqueue(buffer);
        _signal.Release();
        return true;
    }

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = _name };
        _thread.Start();
    }

    public void Stop()
    {
        _stopping = true;
        _signal.Release();
        _thread?.Join(TimeSpan.FromSeconds(5));
        while (_queue.TryDequeue(out var b)) Discard(b);
    }

    private void Run()
    {
        OnThreadStart();
        try
        {
            while (true)
            {
                _signal.Wait();
                if (_stopping) return;
                if (!_queue.TryDequeue(out var buffer)) continue;
                Interlocked.Decrement(ref _count);
                try
                {
                    Process(buffer);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A malformed packet must never take the device down; count and go on.
                    OnError(e);
                    Discard(buffer);
                }
                // Queue drained: this wake-up's work is done, let batched output go.
                if (Volatile.Read(ref _count) == 0) OnIdle();
                Volatile.Write(ref _allocated, GC.GetAllocatedBytesForCurrentThread());
            }
        }
        finally
        {
            OnIdle();
        }
    }

    protected virtual void OnThreadStart() { }
    protected virtual void OnIdle() { }

    protected abstract void Process(PacketBuffer buffer);
    protected abstract void Discard(PacketBuffer buffer);
    protected abstract void OnError(Exception e);
}

/// <summary>Decrypts transport packets of the peers assigned to it, in arrival order.</summary>
internal sealed class Worker(WgDevice device, int id) : QueueThread($"wg-crypto-{id}", 8192)
{
    protected override void Process(PacketBuffer buffer) => device.ProcessTransport(buffer);
    protected override void OnThreadStart() => device.BeginOutgoingBatches();
    protected override void OnIdle() => device.FlushOutgoing();
    protected override void Discard(PacketBuffer buffer) => device.ReturnBuffer(buffer);
    protected override void OnError(Exception e) => device.CountMalformed();
}

/// <summary>Processes handshake messages and cookie replies on one thread.</summary>
internal sealed class HandshakeQueue(WgDevice device, int capacity) : QueueThread("wg-handshake", capacity)
{
    public int Capacity { get; } = capacity;
    protected override void Process(PacketBuffer buffer) => device.ProcessHandshakeMessage(buffer);
    protected override void OnThreadStart() => device.BeginOutgoingBatches();
    protected override void OnIdle() => device.FlushOutgoing();
    protected override void Discard(PacketBuffer buffer) => device.ReturnBuffer(buffer);
    protected override void OnError(Exception e) => device.CountMalformed();
}
