using WgEngine.Contracts;
using WgEngine.Crypto;

namespace WgEngine.Gateway;

/// <summary>
/// The peer life cycle beyond add/remove: disable (out of the engine, kept in the list, the config and
/// the AllowedIPs index), enable, and automatic disabling at an expiry time. One timer serves every
/// expiry: it is armed for the earliest known time and, when it fires, sweeps all peers once.
/// </summary>
public sealed partial class VPNServer
{
    private readonly TimeProvider _time;
    private ITimer? _expiryTimer;
    private DateTimeOffset? _nextExpiry;   // when the timer fires; null = not armed
    private int _disabledCount;
    private static readonly TimeSpan MaxTimerDue = TimeSpan.FromDays(1);

    /// <summary>Takes the peer out of the engine (sessions dropped, no handshake possible) but keeps it,
    /// its AllowedIPs and its config entry. False when it was already disabled. Throws NotFound for an unknown key.</summary>
    public bool DisablePeer(WgKey publicKey)
    {
        lock (_lock)
        {
            EnsureChangeable();
            if (!_peers.TryGetValue(publicKey, out var entry)) throw NotFound(publicKey);
            if (entry.Disabled) return false;
            DisableCore(entry, DisabledReasons.Manual);
            Raise(PeerEventKind.Disabled, StatusOf(entry));
            Persist();
            return true;
        }
    }

    /// <summary>Puts a disabled peer back into the engine with its config. An expiry already past is cleared
    /// (the operator enabled it on purpose). False when it was already enabled.</summary>
    public bool EnablePeer(WgKey publicKey)
    {
        lock (_lock)
        {
            EnsureChangeable();
            if (!_peers.TryGetValue(publicKey, out var entry)) throw NotFound(publicKey);
            if (!entry.Disabled) return false;
            if (entry.DisabledReason == DisabledReasons.QuotaExceeded) RestartQuota(entry);   // enabled on purpose: a fresh quota
            _backend.AddPeer(entry.Config! with { QuotaUsedBytes = entry.QuotaUsed });
            entry.Disabled = false;
            entry.DisabledReason = null;
            _disabledCount--;
            if (IsExpired(entry.ExpiresAt)) entry.ExpiresAt = null;
            ScheduleExpiry(entry);
            Raise(PeerEventKind.Enabled, StatusOf(entry));
            Persist();
            return true;
        }
    }

    private void DisableCore(PeerEntry entry, string reason)
    {
        entry.QuotaUsed = CurrentQuotaUsed(entry);
        entry.DisabledReason = reason;
        _backend.RemovePeer(entry.Key);
        entry.Disabled = true;
        _disabledCount++;
    }

    private bool IsExpired(DateTimeOffset? at) => at is { } t && t <= _time.GetUtcNow();

    /// <summary>Arms the timer earlier when this enabled peer expires before the current due time.
    /// A later or cleared expiry leaves the timer as it is: the sweep then simply finds nothing.</summary>
    private void ScheduleExpiry(PeerEntry entry)
    {
        if (entry.Disabled || entry.ExpiresAt is not { } at) return;
        if (_nextExpiry is { } next && next <= at) return;
        Arm(at);
    }

    private void Arm(DateTimeOffset at)
    {
        _nextExpiry = at;
        var due = at - _time.GetUtcNow();
        if (due < TimeSpan.Zero) due = TimeSpan.Zero;
        if (due > MaxTimerDue) due = MaxTimerDue;   // timers take at most ~49 days: wake early, sweep, re-arm
        if (_expiryTimer is null)
            _expiryTimer = _time.CreateTimer(static s => ((VPNServer)s!).SweepExpired(), this, due, Timeout.InfiniteTimeSpan);
        else
            _expiryTimer.Change(due, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Disables every peer whose time has come, persists once, and re-arms for the next one.</summary>
    private void SweepExpired()
    {
        lock (_lock)
        {
            if (!_backend.IsRunning || _expiryTimer is null) return;
            var now = _time.GetUtcNow();
            DateTimeOffset? next = null;
            bool changed = false;
            foreach (var e in _peers.Values)
            {
                if (e.Disabled || e.ExpiresAt is not { } at) continue;
                if (at <= now) { DisableCore(e, DisabledReasons.Expired); Raise(PeerEventKind.Expired, StatusOf(e)); changed = true; }
                else if (next is null || at < next) next = at;
            }
            _nextExpiry = null;
            if (next is { } n) Arm(n);
            if (changed)
            {
                try { Persist(); }
                catch (WgException) { }   // stays dirty: every write is the full state, so the next change retries it
            }
        }
    }

    private void StopExpiry()
    {
        _expiryTimer?.Dispose();
        _expiryTimer = null;
        _nextExpiry = null;
    }
}
