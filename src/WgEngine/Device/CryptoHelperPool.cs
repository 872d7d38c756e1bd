namespace WgEngine.Device;

/// <summary>
/// Work on one slot range of a batch that a <see cref="CryptoHelperPool"/> may hand to a helper thread. An
/// implementation must let disjoint ranges run at once on different threads (each slot's work touches only its
/// own slot: sealing or opening one packet in its own buffer) and must not allocate.
/// </summary>
internal interface IRangeJob
{
    void Run(int from, int to);
}

/// <summary>
/// The threads that share one busy peer's crypto with the thread that owns its packets (issue 15 item 3), in both
/// directions: an outgoing batch is sealed on them before its one bind call (<see cref="OutgoingBatch"/>), and a run
/// of one keypair's received packets is opened on them before the worker accepts each in order
/// (<see cref="IncomingRun"/>). One pool per device, one set of threads for both directions. The calling thread
/// takes the first range, helpers the others; the call returns when all are done, so the caller then carries on
/// in slot order (send, or replay check and delivery) exactly as it would have without the helpers.
/// Used by one calling thread at a time: a call that finds the helpers busy with another batch, or a batch too
/// small to be worth waking them for, runs the whole range on its own thread, so the many-peer case (many small
/// batches on many workers) never waits here. Nothing is allocated per call.
/// </summary>
internal sealed class CryptoHelperPool : IDisposable
{
    /// <summary>Below this many packets a batch stays on the calling thread: waking a helper costs a few
    /// microseconds, about what sealing or opening two or three full-size packets does (docs/performance.md).</summary>
    internal const int MinParallelPackets = 8;

    private readonly Helper[] _helpers;
    // Released once per parallel call, by the helper that finishes last. A SemaphoreSlim makes its lock object up
    // front; a ManualResetEventSlim makes it the first time a wait really blocks, an allocation in the data path.
    private readonly SemaphoreSlim _done = new(0);
    private int _busy;
    private int _pending;
    private volatile Exception? _failure;
    private volatile bool _stopping;   // set once Dispose holds _busy: the helpers' signal to end
    private long _parallelSeals, _parallelOpens;

    /// <summary>Starts <paramref name="helperThreads"/> threads (0: every batch runs on its calling thread).</summary>
    public CryptoHelperPool(int helperThreads)
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

    /// <summary>Outgoing batches whose sealing was shared with the helpers (tests, metrics).</summary>
    public long ParallelSealBatches => Volatile.Read(ref _parallelSeals);

    /// <summary>Runs of received packets whose opening was shared with the helpers (tests, metrics).</summary>
    public long ParallelOpenBatches => Volatile.Read(ref _parallelOpens);

    /// <summary>Bytes the helper threads have allocated so far (tests: none per batch).</summary>
    internal long HelperAllocatedBytes
    {
        get { long sum = 0; foreach (var h in _helpers) sum += Volatile.Read(ref h.Allocated); return sum; }
    }

    /// <summary>
    /// The default number of helpers: none below 4 cores, else half the cores minus the calling thread, at most 7.
    /// The other half is left for the other direction's worker, the TUN and the kernel's side of each packet. On the
    /// 2-core machines here, where the far end, iperf3 and the kernel already keep the second core busy, a helper
    /// added 16-32% CPU per GB (its wake-ups) and no throughput (bench/e2e/site-to-site.ps1 -Kinds
    /// ours,ours-serial-seal, docs/performance.md). WIREGUARDGATEWAY_SEAL_THREADS overrides the default for both
    /// directions (0 turns parallel sealing and opening off).
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
        RunAll(batch, batch.Count, ref _parallelSeals);
    }

    /// <summary>Opens every packet of the run, on several cores when it pays and the helpers are free. Returns when
    /// all are opened (each with its own verdict: a forgery fails only its own slot).</summary>
    public void OpenAll(IncomingRun run)
    {
        RunAll(run, run.Count, ref _parallelOpens);
    }

    /// <summary>Runs slots [0, count) of the job; counts in <paramref name="parallelCalls"/> a call that the helpers
    /// took part in. Throws what a range threw, once every range is done (they all write into the batch's buffers).</summary>
    private void RunAll(IRangeJob job, int count, ref long parallelCalls)
    {
        if (_helpers.Length == 0 || count < MinParallelPackets || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            job.Run(0, count);
            return;
        }
        try
        {
            int parts = Math.Min(_helpers.Length + 1, count / (MinParallelPackets / 2));
            int per = count / parts, extra = count % parts;
            // Range 0 (the first, one packet longer when the count does not divide) stays on this thread.
            int firstEnd = per + (extra > 0 ? 1 : 0);
            _failure = null;
            Volatile.Write(ref _pending, parts - 1);
            int from = firstEnd;
            for (int p = 1; p < parts; p++)
            {
                int to = from + per + (p < extra ? 1 : 0);
                _helpers[p - 1].Post(job, from, to);
                from = to;
            }
            Interlocked.Increment(ref parallelCalls);
            Exception? mine = null;
            try { job.Run(0, firstEnd); }
            catch (Exception e) { mine = e; }
            // Wait for the helpers even after a failure here: they are still writing into this batch's buffers.
            _done.Wait();
            if ((mine ?? _failure) is { } failed) throw new InvalidOperationException("Crypto on a batch failed.", failed);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private void Completed(Exception? failure)
    {
        if (failure is not null) _failure = failure;
        if (Interlocked.Decrement(ref _pending) == 0) _done.Release();
    }

    /// <summary>Waits for a batch in progress, then ends the helpers; later batches run on their own thread.</summary>
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
        private readonly CryptoHelperPool _owner;
        public readonly SemaphoreSlim Signal = new(0);
        public readonly Thread Thread;
        public long Allocated;
        private IRangeJob? _job;
        private int _from, _to;

        public Helper(CryptoHelperPool owner, int id)
        {
            _owner = owner;
            Thread = new Thread(Run) { IsBackground = true, Name = $"wg-crypto-help-{id}" };
        }

        public void Post(IRangeJob job, int from, int to)
        {
            _job = job;
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
                try { _job!.Run(_from, _to); }
                catch (Exception e) { failure = e; }
                _job = null;
                Volatile.Write(ref Allocated, GC.GetAllocatedBytesForCurrentThread());
                _owner.Completed(failure);
            }
        }
    }
}
