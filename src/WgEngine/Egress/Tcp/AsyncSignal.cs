using System.Threading.Tasks.Sources;

namespace WgEngine.Egress.Tcp;

/// <summary>
/// An auto-reset signal for one waiter at a time, awaited without allocating (a reusable
/// IValueTaskSource): a flow's pump waits on it for buffer space or data.
/// </summary>
internal sealed class AsyncSignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private readonly object _gate = new();
    private bool _set, _waiting;

    public void Set()
    {
        lock (_gate)
        {
            if (_waiting) { _waiting = false; _core.SetResult(true); }
            else _set = true;
        }
    }

    public void Reset() { lock (_gate) _set = false; }

    public ValueTask WaitAsync()
    {
        lock (_gate)
        {
            if (_set) { _set = false; return default; }
            _core.Reset();
            _waiting = true;
            return new ValueTask(this, _core.Version);
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);
    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
