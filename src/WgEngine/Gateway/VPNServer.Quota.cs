using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Policy;

namespace WgEngine.Gateway;

/// <summary>Why a peer is disabled (PeerStatus.DisabledReason).</summary>
internal static class DisabledReasons
{
    public const string Manual = "Manual", Expired = "Expired", QuotaExceeded = "QuotaExceeded";
}

/// <summary>
/// Data quotas: the engine counts each limited peer's bytes (both directions) down and reports the moment
/// the quota is used up; the peer is then disabled with DisabledReason QuotaExceeded (Enable-WgPeer clears
/// it and starts the quota afresh). A timer on the injected clock (every minute while any peer has a quota)
/// starts each new period (the usage returns to zero and a peer disabled by its quota is enabled again) and
/// writes the usage to the config file, so it survives a restart.
/// </summary>
public sealed partial class VPNServer
{
    private static readonly TimeSpan QuotaTick = TimeSpan.FromMinutes(1);
    private ITimer? _quotaTimer;

    /// <summary>Late-bound target of the engine's report: the device exists before the server.</summary>
    private sealed class QuotaTarget
    {
        public VPNServer? Server;
        public void Report(WgKey key)
        {
            if (Server is { } s) ThreadPool.UnsafeQueueUserWorkItem(static x => x.Server.QuotaExhausted(x.Key), (Server: s, Key: key), preferLocal: false);
        }
    }

    private static DataQuota? CheckQuota(DataQuota? quota) => PeerChecks.Quota(quota);

    /// <summary>The period start and usage of a peer given a quota (from a file: the new period may have begun since).</summary>
    private void InitQuota(PeerEntry entry, DataQuota? quota, DateTimeOffset? periodStart, long used)
    {
        if (quota is not { } q) return;
        var current = q.PeriodStart(_time.GetUtcNow());
        entry.QuotaPeriodStart = periodStart is { } p && p >= current ? p : current;
        entry.QuotaUsed = periodStart is { } since && since >= current ? used : 0;
        if (entry.Config is { } c && c.QuotaUsedBytes != entry.QuotaUsed) entry.Config = c with { QuotaUsedBytes = entry.QuotaUsed };
        _quotaTimer ??= _time.CreateTimer(static s => ((VPNServer)s!).QuotaSweep(), this, QuotaTick, QuotaTick);
    }

    /// <summary>What the peer used of its quota: the engine's count while it is in the engine, else the last one.</summary>
    private long CurrentQuotaUsed(PeerEntry e)
    {
        if (e.Config?.Quota is null) return 0;
        if (e.Disabled) return e.QuotaUsed;
        return _backend.GetPeer(e.Key) is { } s ? s.QuotaUsedBytes : e.QuotaUsed;
    }

    private void RestartQuota(PeerEntry entry)
    {
        entry.QuotaUsed = 0;
        if (entry.Config?.Quota is { } q) entry.QuotaPeriodStart = q.PeriodStart(_time.GetUtcNow());
    }

    private void QuotaExhausted(WgKey key)
    {
        lock (_lock)
        {
            if (!_backend.IsRunning || !_peers.TryGetValue(key, out var entry) || entry.Disabled || entry.Config?.Quota is not { } q) return;
            DisableCore(entry, DisabledReasons.QuotaExceeded);
            entry.QuotaUsed = Math.Max(entry.QuotaUsed, q.Bytes);
            Raise(PeerEventKind.Disabled, StatusOf(entry));   // webhooks and engine events: disabled by its quota
            try { Persist(); }
            catch (WgException) { }   // stays dirty: the next change retries the whole state
        }
    }

    /// <summary>New periods: usage back to zero, quota-disabled peers enabled again; then the usage written.</summary>
    private void QuotaSweep()
    {
        lock (_lock)
        {
            if (!_backend.IsRunning) return;
            var now = _time.GetUtcNow();
            bool any = false;
            foreach (var e in _peers.Values)
            {
                if (e.Config?.Quota is not { } q) continue;
                any = true;
                var start = q.PeriodStart(now);
                if (e.QuotaPeriodStart is { } since && since >= start) continue;
                e.QuotaPeriodStart = start;
                e.QuotaUsed = 0;
                if (!e.Disabled) _backend.UpdatePeer(e.Config with { QuotaUsedBytes = 0 });
                else if (e.DisabledReason == DisabledReasons.QuotaExceeded)
                {
                    _backend.AddPeer(e.Config with { QuotaUsedBytes = 0 });
                    e.Disabled = false;
                    e.DisabledReason = null;
                    _disabledCount--;
                }
            }
            if (!any) return;
            try { Persist(); }
            catch (WgException) { }
        }
    }

    private void StopQuota()
    {
        _quotaTimer?.Dispose();
        _quotaTimer = null;
    }
}
