namespace WgEngine.Device;

/// <summary>
/// Seals the packets of one outgoing batch on several cores (issue 15 item 3). The batch's packets already have
/// their counters, headers and padding, and each has a fixed slot. Helper threads seal contiguous ranges of the
/// slots while the flushing thread seals the first range. The flushing thread then waits for all of them and
/// sends the batch as one bind call, in slot order. So one busy peer, such as a site-to-site tunnel whose TUN
/// hands over a 64 KiB super-packet at a time, uses more than one core, and its packets leave in the order their
/// counters were taken.
/// Used by one flushing thread at a time. A flush that finds the helpers busy with another batch, or a batch too
/// small to be worth waking them for, seals on its own thread as before, so the many-peer case (many small
/// batches on many workers) never waits here. Nothing is allocated per batch.
/// </summary>
internal sealed class ParallelSealer : IDisposable
{
    /// <summary>Below this many packets a batch is sealed on the flushing thread: waking a helper costs a few
    /// microseconds, about what sealing two or three full-size packets does (docs/performance.md).</summary>
    internal const int MinParallelPackets = 8;

    private readonly Helper[] _helpers;
    private readonly ManualResetEventSlim _done = new(false, spinCount: 200);
    private int _busy;
    private int _pending;
    private volatile Exception? _failure;
    private volatile bool _stopping;   // set once Dispose holds _busy: the helpers' signal to end

    /// <summary>Starts <paramref name="helperThreads"/> threads (0: every batch is sealed on its flushing thread).</summary>
    public ParallelSealer(int helperThreads)
    {
        _helpers = new Helper[Math.Max(0, helperThreads)];
        for (int i = 0; i < _helpers.Length; i++)
        {
            var h = new Helper(this, i);
            _helpers[i] = h;
            h.Thread.Start();
        }
    }

    public int HelperThreads => _helpers.Length;

    /// <summary>Batches whose sealing was shared with the helpers (tests, metrics).</summary>
    public long ParallelBatches => Volatile.Read(ref _parallelBatches);
    private long _parallelBatches;

    /// <summary>Bytes the helper threads have allocated so far (tests: none per batch).</summary>
    internal long HelperAllocatedBytes
    {
        get { long sum = 0; foreach (var h in _helpers) sum += Volatile.Read(ref h.Allocated); return sum; }
    }

    /// <summary>
    /// The default number of helpers: none below 4 cores, else half the cores minus the flushing thread, at most 7.
    /// The other half is left for decryption, the TUN and the kernel's side of each packet. On the 2-core machines
    /// here, where the far end, iperf3 and the kernel already keep the second core busy, a helper added 16-32% CPU
    /// per GB (its wake-ups) and no throughput (bench/e2e/site-to-site.ps1 -Kinds ours,ours-serial-seal,
    /// docs/performance.md). WIREGUARDGATEWAY_SEAL_THREADS overrides the default (0 turns parallel sealing off).
    /// </summary>
    public static int DefaultHelperThreads()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("WIREGUARDGATEWAY_SEAL_THREADS"), out int n) && n >= 0) return Math.Min(n, 64);
        int cores = Environment.ProcessorCount;
        return cores < 4 ? 0 : Math.Min(cores / 2 - 1, 7);
    }

    /// <summary>Seals every packet of the batch, on several cores when it pays and the helpers are free. Returns
    /// when all are sealed; throws what a helper's seal threw (the batch must then not be sent).</summary>
    public void SealAll(OutgoingBatch batch)
    {
        int count = batch.Count;
        if (_helpers.Length == 0 || count < MinParallelPackets || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            batch.Seal(0, count);
            return;
        }
        try
        {
            int parts = Math.Min(_helpers.Length + 1, count / (MinParallelPackets / 2));
            int per = count / parts, extra = count % parts;
            // Range 0 (the first, one packet longer when the count does not divide) stays on this thread.
            int firstEnd = per + (extra > 0 ? 1 : 0);
            _failure = null;
            _done.Reset();
            Volatile.Write(ref _pending, parts - 1);
            int from = firstEnd;
            for (int p = 1; p < parts; p++)
            {
                int to = from + per + (p < extra ? 1 : 0);
                _helpers[p - 1].Post(batch, from, to);
                from = to;
            }
            Interlocked.Increment(ref _parallelBatches);
            Exception? mine = null;
            try { batch.Seal(0, firstEnd); }
            catch (Exception e) { mine = e; }
            // Wait for the helpers even after a failure here: they are still writing into this batch's buffers.
            _done.Wait();
            if ((mine ?? _failure) is { } failed) throw new InvalidOperationException("Sealing an outgoing batch failed.", failed);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private void Completed(Exception? failure)
    {
        if (failure is not null) _failure = failure;
        if (Interlocked.Decrement(ref _pending) == 0) _done.Set();
    }

    /// <summary>Waits for a batch in progress, then ends the helpers; later batches are sealed on their own thread.</summary>
    public void Dispose()
    {
        // Holding _busy for good: no batch is posted to the helpers from now on.
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _busy, 1, 0) != 0) spin.SpinOnce();
        _stopping = true;
        foreach (var h in _helpers) h.Signal.Release();
        foreach (var h in _helpers) h.Thread.Join(TimeSpan.FromSeconds(5));
    }

    /// <summary>One helper thread and the range it was given.</summary>
    private sealed class Helper
    {
        private readonly ParallelSealer _owner;
        public readonly SemaphoreSlim Signal = new(0);
        public readonly Thread Thread;
        public long Allocated;
        private OutgoingBatch? _batch;
        private int _from, _to;

        public Helper(ParallelSealer owner, int id)
        {
            _owner = owner;
            Thread = new Thread(Run) { IsBackground = true, Name = $"wg-seal-{id}" };
        }

        public void Post(OutgoingBatch batch, int from, int to)
        {
            _batch = batch;
            _from = from;
            _to = to;
            Signal.Release();   // a full fence: the fields are visible to the helper before it wakes
        }

        private void Run()
        {
            while (true)
            {
                Signal.Wait();
                if (_owner._stopping) return;
                Exception? failure = null;
                try { _batch!.Seal(_from, _to); }
                catch (Exception e) { failure = e; }
                _batch = null;
                Volatile.Write(ref Allocated, GC.GetAllocatedBytesForCurrentThread());
                _owner.Completed(failure);
            }
        }
    }
}
