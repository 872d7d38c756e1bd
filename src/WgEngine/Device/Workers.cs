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
    // 1 while an item is being processed, here or inline by a caller (TryProcessInline): keeps the items
    // of this queue's peers one at a time and in order.
    private int _busy;
    // The item a run took from the queue but could not use (another keypair): the next to process, still counted.
    // Only the consuming thread touches it. (ConcurrentQueue.TryPeek would do without it, but a peek preserves the
    // queue's segment for observers, so that the next enqueues allocate a new one: an allocation per few packets.)
    private PacketBuffer? _held;

    protected QueueThread(string name, int capacity)
    {
        _name = name;
        _capacity = capacity;
    }

    public int Count => Volatile.Read(ref _count);

    /// <summary>Nothing queued and nothing in progress (an item is counted or marked busy throughout).</summary>
    internal bool IsIdle => Volatile.Read(ref _count) == 0 && Volatile.Read(ref _busy) == 0;

    /// <summary>Bytes this thread has allocated so far (sampled after each item): proves the data path allocation-free.</summary>
    public long AllocatedBytes => Volatile.Read(ref _allocated);
    private long _allocated;

    /// <summary>Takes a queued item without processing it, for a caller that drives the device on its own
    /// thread (the fuzzing driver: an unstarted device, Dispatch then drain).</summary>
    internal bool TryTakeQueued(out PacketBuffer buffer)
    {
        if (TakeHeld(out buffer)) return true;
        if (!_queue.TryDequeue(out buffer!)) return false;
        Interlocked.Decrement(ref _count);
        return true;
    }

    public bool TryEnqueue(PacketBuffer buffer) => TryEnqueue(buffer, wake: true);

    /// <summary>Queues <paramref name="buffer"/>; with <paramref name="wake"/> false the thread is not woken for it,
    /// and the caller calls <see cref="Wake"/> once for all it queued (the receive thread, once per batch: one
    /// wake-up of this thread instead of one per packet, each a futex round trip when the thread sleeps).</summary>
    public bool TryEnqueue(PacketBuffer buffer, bool wake)
    {
        if (Interlocked.Increment(ref _count) > _capacity)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }
        _queue.Enqueue(buffer);
        if (wake) Wake();
        return true;
    }

    /// <summary>Wakes the thread for what was queued without waking it; it then drains the whole queue.</summary>
    public void Wake() => _signal.Release();

    /// <summary>
    /// Processes the item on the calling thread when nothing is queued or in progress here, saving the
    /// wake-up of this thread (a futex round trip and a scheduling delay: the latency of a lone packet).
    /// False when busy: the caller queues it instead.
    /// </summary>
    public bool TryProcessInline(PacketBuffer buffer)
    {
        if (!TryBeginInline()) return false;
        ProcessAndRelease(buffer);
        return true;
    }

    /// <summary>
    /// Takes this thread's place for the caller when nothing is queued or in progress here: until
    /// <see cref="EndInline"/>, the caller processes items with <see cref="ProcessInline"/> and this thread
    /// processes none (its items keep their order). False when busy: the caller queues instead.
    /// </summary>
    public bool TryBeginInline()
    {
        if (Volatile.Read(ref _count) != 0 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return false;
        // Something queued between the two reads goes first: leave this one to the queue behind it.
        if (Volatile.Read(ref _count) != 0)
        {
            Volatile.Write(ref _busy, 0);
            return false;
        }
        return true;
    }

    /// <summary>Processes one item on the calling thread, between <see cref="TryBeginInline"/> and <see cref="EndInline"/>.</summary>
    public void ProcessInline(PacketBuffer buffer)
    {
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
    }

    /// <summary>Gives this thread its place back (after <see cref="TryBeginInline"/>).</summary>
    public void EndInline() => Volatile.Write(ref _busy, 0);

    /// <summary>Processes one item while holding _busy, and releases it.</summary>
    private void ProcessAndRelease(PacketBuffer buffer)
    {
        try
        {
            ProcessInline(buffer);
        }
        finally
        {
            EndInline();
        }
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
        if (TakeHeld(out var held)) Discard(held);
        while (_queue.TryDequeue(out var b)) Discard(b);
    }

    private bool TakeHeld(out PacketBuffer buffer)
    {
        buffer = _held!;
        if (buffer is null) return false;
        _held = null;
        Interlocked.Decrement(ref _count);
        return true;
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
                // One wake-up drains the queue: a batch queued with a single Wake, and the items whose own
                // signals then find the queue empty (the loop goes round once per spare signal, without sleeping).
                bool any = false;
                while (!_stopping && TakeAndProcess())
                {
                    any = true;
                    // Queue drained: this wake-up's work is done, let batched output go.
                    if (Volatile.Read(ref _count) == 0) OnIdle();
                }
                if (any) Volatile.Write(ref _allocated, GC.GetAllocatedBytesForCurrentThread());
            }
        }
        finally
        {
            OnIdle();
        }
    }

    /// <summary>
    /// Takes the next queued item and processes it, together with the items queued right behind it that
    /// <see cref="JoinsRun"/> accepts, when <see cref="StartsRun"/> opened a run with it. False when nothing was queued.
    /// The thread's own loop; also for a caller that drives an unstarted device on its own thread (tests).
    /// </summary>
    internal bool TakeAndProcess()
    {
        var buffer = _held;
        if (buffer is not null) _held = null;
        else if (!_queue.TryDequeue(out buffer)) return false;
        // An inline caller may still be on the item before this one (none while an item is held: it is counted).
        while (Interlocked.CompareExchange(ref _busy, 1, 0) != 0) Thread.SpinWait(20);
        Interlocked.Decrement(ref _count);
        if (!StartsRun(buffer))
        {
            ProcessAndRelease(buffer);
            return true;
        }
        while (_queue.TryDequeue(out var next))
        {
            if (!JoinsRun(next))
            {
                _held = next;   // the first of the next run; its signal, or a spare one of this run's, wakes us for it
                break;
            }
            Interlocked.Decrement(ref _count);
        }
        try
        {
            ProcessRun();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            OnError(e);
            DiscardRun();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
        return true;
    }

    /// <summary>Whether <paramref name="first"/> opens a run (then taken in by the run); false: it is processed alone.</summary>
    protected virtual bool StartsRun(PacketBuffer first) => false;
    /// <summary>Whether the next queued item joins the open run (then taken in by it; the caller dequeues it).</summary>
    protected virtual bool JoinsRun(PacketBuffer next) => false;
    /// <summary>Processes the open run and closes it.</summary>
    protected virtual void ProcessRun() { }
    /// <summary>After a failure in <see cref="ProcessRun"/>: frees the run's items not yet handed on, and closes it.</summary>
    protected virtual void DiscardRun() { }

    protected virtual void OnThreadStart() { }
    protected virtual void OnIdle() { }

    protected abstract void Process(PacketBuffer buffer);
    protected abstract void Discard(PacketBuffer buffer);
    protected abstract void OnError(Exception e);
}

/// <summary>Decrypts transport packets of the peers assigned to it, in arrival order. With crypto helpers, the
/// consecutive packets of one keypair at the head of its queue are taken as one run (<see cref="IncomingRun"/>),
/// opened on several cores and then accepted in order.</summary>
internal sealed class Worker(WgDevice device, int id) : QueueThread($"wg-crypto-{id}", 8192)
{
    private readonly IncomingRun _run = new();

    protected override void Process(PacketBuffer buffer) => device.ProcessTransport(buffer);
    protected override void OnThreadStart() => device.BeginOutgoingBatches();
    protected override void OnIdle() => device.FlushOutgoing();
    protected override void Discard(PacketBuffer buffer) => device.ReturnBuffer(buffer);
    protected override void OnError(Exception e) => device.CountMalformed();

    protected override bool StartsRun(PacketBuffer first)
    {
        if (!device.OpensInParallel) return false;
        _run.Add(first);
        return true;
    }

    protected override bool JoinsRun(PacketBuffer next)
    {
        if (!_run.Takes(next)) return false;
        _run.Add(next);
        return true;
    }

    protected override void ProcessRun()
    {
        device.ProcessTransportRun(_run);
        _run.Clear();
    }

    protected override void DiscardRun()
    {
        // The slot that failed was handed on already (it may be back in the pool): only the ones after it.
        for (int i = _run.Handed; i < _run.Count; i++) device.ReturnBuffer(_run.Buffers[i]);
        _run.Clear();
    }
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
