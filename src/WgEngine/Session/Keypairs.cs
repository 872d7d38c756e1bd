namespace WgEngine.Session;

/// <summary>
/// A peer's three session slots (whitepaper §5.4.6; wireguard-go's Keypairs): <see cref="Current"/> sends
/// and receives, <see cref="Previous"/> still receives what was in flight during a rekey, and
/// <see cref="Next"/> is the responder's new session, which becomes current once the initiator uses it.
/// The rotation is written here once; every change returns the sessions it retired, which the caller
/// erases and unregisters (this type does no I/O and knows no index table). Readers take the slots
/// lock-free; changes are serialised.
/// </summary>
internal sealed class Keypairs<TKeypair> where TKeypair : class
{
    private readonly object _lock = new();
    private volatile TKeypair? _current, _previous, _next;

    public TKeypair? Current => _current;
    public TKeypair? Previous => _previous;
    public TKeypair? Next => _next;
    public bool IsEmpty => _current is null && _previous is null && _next is null;

    /// <summary>The initiator got the response: its new session sends at once. A pending "next" (a
    /// session it also answered as responder) becomes previous instead of the old current.</summary>
    public Retired<TKeypair> UseAsInitiator(TKeypair session)
    {
        ArgumentNullException.ThrowIfNull(session);
        lock (_lock)
        {
            Retired<TKeypair> retired;
            if (_next is { } next)
            {
                retired = new(_previous, _current);
                _previous = next;
                _next = null;
            }
            else
            {
                retired = new(_previous);
                _previous = _current;
            }
            _current = session;
            return retired;
        }
    }

    /// <summary>The responder sent its response: the new session waits as "next" until the initiator
    /// sends on it (<see cref="TryConfirm"/>); the old current keeps sending meanwhile.</summary>
    public Retired<TKeypair> StageAsResponder(TKeypair session)
    {
        ArgumentNullException.ThrowIfNull(session);
        lock (_lock)
        {
            var retired = new Retired<TKeypair>(_next, _previous);
            _previous = null;
            _next = session;
            return retired;
        }
    }

    /// <summary>A packet authenticated on <paramref name="session"/>: if it is "next", it becomes current
    /// (the responder's key confirmation). False when it was not next (already confirmed, or replaced).</summary>
    public bool TryConfirm(TKeypair session, out Retired<TKeypair> retired)
    {
        retired = default;
        if (!ReferenceEquals(_next, session)) return false;
        lock (_lock)
        {
            if (!ReferenceEquals(_next, session)) return false;
            retired = new(_previous);
            _previous = _current;
            _current = session;
            _next = null;
            return true;
        }
    }

    /// <summary>Empties every slot (key erasure, a removed peer, a changed key).</summary>
    public Retired<TKeypair> Clear()
    {
        lock (_lock)
        {
            var retired = new Retired<TKeypair>(_previous, _current, _next);
            _previous = _current = _next = null;
            return retired;
        }
    }
}

/// <summary>Up to three sessions a rotation took out of use (no allocation); nulls are skipped.</summary>
internal readonly struct Retired<TKeypair>(TKeypair? a = null, TKeypair? b = null, TKeypair? c = null) where TKeypair : class
{
    public int Count => (a is null ? 0 : 1) + (b is null ? 0 : 1) + (c is null ? 0 : 1);

    public void ForEach(Action<TKeypair> erase)
    {
        if (a is not null) erase(a);
        if (b is not null) erase(b);
        if (c is not null) erase(c);
    }

    /// <summary>The retired sessions one by one (0 to <see cref="Count"/> - 1 over the non-null ones).</summary>
    public TKeypair? this[int slot] => slot switch { 0 => a, 1 => b, 2 => c, _ => null };

    public bool Contains(TKeypair session) => ReferenceEquals(a, session) || ReferenceEquals(b, session) || ReferenceEquals(c, session);
}
