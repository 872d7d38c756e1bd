using System.Collections.Concurrent;
using WgEngine.Device;

namespace WgEngine.Tests.Device;

/// <summary>QueueThread.TryProcessInline: a lone item skips the hand-off, but never overtakes or runs beside another.</summary>
public class InlineProcessingTests
{
    private sealed class Recorder() : QueueThread("test-worker", 64)
    {
        public readonly ConcurrentQueue<(int Item, int Thread)> Done = new();
        public readonly ManualResetEventSlim Release = new(true);
        public readonly ManualResetEventSlim Entered = new(false);
        private int _inside;
        public bool Overlapped;

        protected override void Process(PacketBuffer buffer)
        {
            if (Interlocked.Increment(ref _inside) != 1) Overlapped = true;
            Entered.Set();
            Release.Wait(TimeSpan.FromSeconds(10));
            Done.Enqueue((buffer.Length, Environment.CurrentManagedThreadId));
            Interlocked.Decrement(ref _inside);
        }

        protected override void Discard(PacketBuffer buffer) { }
        protected override void OnError(Exception e) { }
    }

    private static PacketBuffer Item(int n) => new() { Length = n };

    [Fact]
    public void An_idle_queue_runs_the_item_on_the_calling_thread()
    {
        var q = new Recorder();
        q.Start();
        try
        {
            Assert.True(q.TryProcessInline(Item(1)));
            Assert.True(q.Done.TryDequeue(out var d));
            Assert.Equal((1, Environment.CurrentManagedThreadId), d);
        }
        finally { q.Stop(); }
    }

    [Fact]
    public void A_busy_or_non_empty_queue_refuses_so_items_keep_their_order_and_run_one_at_a_time()
    {
        var q = new Recorder();
        q.Start();
        try
        {
            q.Release.Reset();
            Assert.True(q.TryEnqueue(Item(1)));
            Assert.True(q.Entered.Wait(TimeSpan.FromSeconds(5)));   // the worker is inside item 1
            Assert.False(q.TryProcessInline(Item(99)));             // busy: refused
            Assert.True(q.TryEnqueue(Item(2)));
            Assert.False(q.TryProcessInline(Item(98)));             // item 2 queued: refused
            q.Release.Set();
            TestSupport.TestNet.WaitFor(() => q.Done.Count == 2, "both queued items");
            TestSupport.TestNet.WaitFor(() => q.Count == 0, "the queue drained");
            // Idle again: inline works, after the queued ones.
            TestSupport.TestNet.WaitFor(() => q.TryProcessInline(Item(3)), "the worker to finish item 2");
            Assert.Equal([1, 2, 3], q.Done.Select(d => d.Item).ToArray());
            Assert.False(q.Overlapped);
        }
        finally { q.Stop(); }
    }

    [Fact]
    public void Inline_and_queued_items_from_racing_callers_never_overlap()
    {
        var q = new Recorder();
        q.Start();
        try
        {
            int inline = 0, queued = 0;
            var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
            {
                for (int i = 0; i < 5000; i++)
                {
                    if (q.TryProcessInline(Item(i))) Interlocked.Increment(ref inline);
                    else if (q.TryEnqueue(Item(i))) Interlocked.Increment(ref queued);
                    else Thread.Yield();   // full: this item is dropped, as the device would
                }
            })).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(30)));
            TestSupport.TestNet.WaitFor(() => q.Done.Count == inline + queued, "every accepted item processed");
            Assert.False(q.Overlapped);
            Assert.True(inline > 0);
        }
        finally { q.Stop(); }
    }
}
