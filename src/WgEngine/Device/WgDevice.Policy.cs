using WgEngine.Contracts;
using WgEngine.Egress;
using WgEngine.PacketPlane;
using WgEngine.Policy;

namespace WgEngine.Device;

internal sealed partial class WgDevice
{
    private TrafficPolicy? _policy;   // null until the first rule or isolation: the packet path then checks nothing

    /// <summary>The traffic policy between this device and its packet planes (created on first use).</summary>
    public TrafficPolicy Policy
    {
        get
        {
            var p = Volatile.Read(ref _policy);
            if (p is not null) return p;
            Interlocked.CompareExchange(ref _policy, _options.Policy ?? new TrafficPolicy(_time), null);
            return _policy!;
        }
    }

    /// <summary>Compiles a peer's rules with its tags' (caller holds the config lock).</summary>
    private void ApplyPolicy(Peer peer, PeerConfig config)
    {
        if (config.Acl.Count == 0 && config.Tags.Count == 0 && peer.Acl is null) return;
        var policy = Policy;
        var before = peer.Acl;
        var after = policy.Compile(config.Acl, config.Tags);
        peer.Acl = after;
        policy.Replaced(before, after);
    }

    /// <summary>New token buckets when a limit changed (a bucket starts full); the old ones when nothing changed.</summary>
    private void ApplyLimits(Peer peer, PeerConfig config)
    {
        var old = peer.Limits;
        if (old?.Upload?.Limit == config.UploadLimit && old?.Download?.Limit == config.DownloadLimit) return;
        peer.Limits = config.UploadLimit is null && config.DownloadLimit is null ? null : new PeerLimits(
            config.UploadLimit is { } up ? (old?.Upload?.Limit == up ? old.Upload : new TokenBucket(up, _time)) : null,
            config.DownloadLimit is { } down ? (old?.Download?.Limit == down ? old.Download : new TokenBucket(down, _time)) : null);
    }

    /// <summary>Sets the quota budget: the quota minus what was used already (a config without quota lifts it).</summary>
    private static void ApplyQuota(Peer peer, PeerConfig config)
    {
        if (config.Quota is not { } q)
        {
            peer.QuotaLimited = false;
            return;
        }
        Volatile.Write(ref peer.QuotaTotal, q.Bytes);
        Interlocked.Exchange(ref peer.QuotaLeft, q.Bytes - config.QuotaUsedBytes);
        Volatile.Write(ref peer.QuotaReported, 0);
        peer.QuotaLimited = true;
    }

    /// <summary>Bytes of its quota the peer used (0 without a quota).</summary>
    private static long QuotaUsed(Peer p) => p.QuotaLimited ? Math.Clamp(Volatile.Read(ref p.QuotaTotal) - Interlocked.Read(ref p.QuotaLeft), 0, long.MaxValue) : 0;

    /// <summary>Counts a data packet against the quota; false (drop it) once the quota is used up, reported once.</summary>
    private bool ChargeQuota(Peer peer, int bytes)
    {
        if (!peer.QuotaLimited) return true;
        if (Interlocked.Add(ref peer.QuotaLeft, -bytes) >= 0) return true;
        Interlocked.Add(ref peer.QuotaLeft, bytes);   // not used: keep the count at what passed
        Interlocked.Increment(ref Counters.DroppedQuota);
        if (Interlocked.Exchange(ref peer.QuotaReported, 1) == 0) _options.QuotaExhausted?.Invoke(peer.PublicKey);
        return false;
    }

    /// <summary>False (the packet is dropped and counted) when the peer's upload limit or quota refuses it.</summary>
    private bool UploadAllowed(Peer from, int bytes)
    {
        if (from.Limits?.Upload is { } bucket && !bucket.TryTake(bytes))
        {
            Interlocked.Increment(ref Counters.DroppedRateLimitedData);
            return false;
        }
        return ChargeQuota(from, bytes);
    }

    /// <summary>False (the caller drops the packet; the quota counts its own drops) when the peer's download limit or quota refuses it.</summary>
    private bool DownloadAllowed(Peer to, int bytes, out bool byQuota)
    {
        byQuota = false;
        if (to.Limits?.Download is { } bucket && !bucket.TryTake(bytes)) return false;
        if (ChargeQuota(to, bytes)) return true;
        byQuota = true;
        return false;
    }

    /// <summary>Sets a tag's rules and recompiles every peer that carries it.</summary>
    public void SetTagRules(string tag, IReadOnlyList<AclRule> rules)
    {
        lock (_configLock)
        {
            var policy = Policy;
            policy.SetTagRules(tag, rules);
            foreach (var peer in _peers.Values)
            {
                if (peer.Acl is not { } before || !before.Tags.Contains(tag, StringComparer.OrdinalIgnoreCase)) continue;
                var after = policy.Compile(before.Own, before.Tags);
                peer.Acl = after;
                policy.Replaced(before, after);
            }
        }
    }

    private void ForgetPolicy(Peer peer)
    {
        if (peer.Acl is { } before) Volatile.Read(ref _policy)?.Replaced(before, null);
        peer.Acl = null;
    }

    /// <summary>True when the policy lets the packet go on (to another peer, or out through the egress).</summary>
    private bool PolicyPermits(Peer from, ReadOnlySpan<byte> packet, bool toPeer) =>
        Volatile.Read(ref _policy) is not { } policy || policy.Permits(from.Acl, packet, toPeer);

    /// <summary>Answers a refused packet with ICMP "administratively prohibited" from the gateway's own address
    /// (so the client fails at once, as for the egress policy), reusing its buffer; drops it when that is not allowed.</summary>
    private void RefuseByPolicy(Peer from, PacketBuffer buf)
    {
        var packet = buf.Data.AsSpan(MessageLayoutOffsets.Payload, buf.Length);
        int n = 0;
        if (IpHeader.TryParse(packet, out var info))
        {
            byte[]? own = null;
            foreach (var a in _ownAddresses)
                if (a.Length == info.AddressLength) { own = a; break; }
            if (own is not null)
            {
                Span<byte> reply = stackalloc byte[IcmpErrors.MaxV6];
                n = IcmpErrors.BuildProhibited(packet, info, own, reply);
                if (n > 0) reply.Slice(0, n).CopyTo(buf.Data.AsSpan(MessageLayoutOffsets.Payload));
            }
        }
        if (n == 0)
        {
            Drop(buf, ref Counters.DroppedPolicy);
            return;
        }
        Interlocked.Increment(ref Counters.DroppedPolicy);
        buf.Length = n;
        SendToPeer(from, buf);
    }
}
