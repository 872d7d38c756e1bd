using System.Buffers.Binary;
using WgEngine.PacketPlane;

namespace WgEngine.Policy;

/// <summary>A peer's compiled rules: its own, then those of each of its tags, in order. Immutable; swapped whole.</summary>
internal sealed class PeerAcl
{
    internal PeerAcl(IReadOnlyList<AclRule> own, IReadOnlyList<string> tags, AclRule[] effective)
    {
        Own = own;
        Tags = tags;
        Effective = effective;
    }

    public IReadOnlyList<AclRule> Own { get; }
    public IReadOnlyList<string> Tags { get; }
    internal AclRule[] Effective { get; }
}

/// <summary>
/// The traffic policy between the device and every packet plane (hub, userspace egress, TUN): client
/// isolation and the per-peer and per-tag ordered ACLs, for every packet a peer sends that is not for
/// the gateway itself. The first rule that matches decides; none matching: allowed, except that with
/// <see cref="PeerIsolation"/> traffic to another peer is refused. A refused packet that answers a flow
/// allowed the other way (<see cref="FlowTracker"/>) passes, so the side that may not open connections
/// can still reply. With no isolation and no rules anywhere it costs one check per packet. No allocation
/// per packet.
/// </summary>
internal sealed class TrafficPolicy
{
    private readonly TimeProvider _time;
    private readonly Lock _write = new();
    private volatile bool _isolation;
    private volatile bool _active;
    private int _peersWithRules;
    private Dictionary<string, AclRule[]> _tags = new(StringComparer.OrdinalIgnoreCase);
    private FlowTracker? _flows;
    internal long denied, replies;

    public TrafficPolicy(TimeProvider? time = null, bool peerIsolation = false, IReadOnlyDictionary<string, IReadOnlyList<AclRule>>? tagRules = null)
    {
        _time = time ?? TimeProvider.System;
        _isolation = peerIsolation;
        if (tagRules is not null)
            foreach (var (tag, rules) in tagRules) _tags[tag] = [.. rules];
        UpdateActive();
    }

    /// <summary>True refuses traffic from one peer to another unless a rule of the sender allows it.</summary>
    public bool PeerIsolation
    {
        get => _isolation;
        set
        {
            lock (_write) { _isolation = value; UpdateActive(); }
        }
    }

    /// <summary>Packets refused by isolation or a rule.</summary>
    public long Denied => Interlocked.Read(ref denied);
    /// <summary>Packets a rule or isolation would refuse that passed as replies of an allowed flow.</summary>
    public long RepliesAllowed => Interlocked.Read(ref replies);

    /// <summary>Every counter by its name.</summary>
    public Dictionary<string, long> CounterSnapshot() => new() { [nameof(Denied)] = Denied, [nameof(RepliesAllowed)] = RepliesAllowed };

    /// <summary>The rules of every tag (a copy).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<AclRule>> TagRules
    {
        get
        {
            var t = Volatile.Read(ref _tags);
            return t.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<AclRule>)kv.Value, StringComparer.OrdinalIgnoreCase);
        }
    }

    /// <summary>Sets (or with an empty list removes) a tag's rules. The caller recompiles the peers that carry the tag.</summary>
    public void SetTagRules(string tag, IReadOnlyList<AclRule> rules)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tag);
        lock (_write)
        {
            var next = new Dictionary<string, AclRule[]>(_tags, StringComparer.OrdinalIgnoreCase);
            if (rules.Count == 0) next.Remove(tag);
            else next[tag] = [.. rules];
            Volatile.Write(ref _tags, next);
        }
    }

    /// <summary>Compiles a peer's rules with its tags' current rules; null when the peer has none at all.</summary>
    public PeerAcl? Compile(IReadOnlyList<AclRule>? own, IReadOnlyList<string>? tags)
    {
        own ??= [];
        tags ??= [];
        if (own.Count == 0 && tags.Count == 0) return null;
        var t = Volatile.Read(ref _tags);
        var effective = new List<AclRule>(own);
        foreach (var tag in tags)
            if (t.TryGetValue(tag, out var rules)) effective.AddRange(rules);
        return new PeerAcl(own, tags, [.. effective]);
    }

    /// <summary>Keeps count of the peers whose compiled rules are not empty (the fast path needs none).</summary>
    internal void Replaced(PeerAcl? before, PeerAcl? after)
    {
        int delta = (after is { Effective.Length: > 0 } ? 1 : 0) - (before is { Effective.Length: > 0 } ? 1 : 0);
        if (delta == 0) return;
        lock (_write)
        {
            _peersWithRules += delta;
            UpdateActive();
        }
    }

    private void UpdateActive()
    {
        bool active = _isolation || _peersWithRules > 0;
        if (active && _flows is null) _flows = new FlowTracker(_time);
        _active = active;
    }

    /// <summary>
    /// Whether a packet from a peer (its compiled rules <paramref name="acl"/>) may go on: to another peer
    /// (<paramref name="toPeer"/>) or out through the egress. Counts refusals.
    /// </summary>
    public bool Permits(PeerAcl? acl, ReadOnlySpan<byte> packet, bool toPeer)
    {
        if (!_active) return true;
        if (!TryReadFlow(packet, out var flow, out int port)) return acl is null && !(toPeer && _isolation);   // unparsable: only unrestricted traffic passes
        bool allow = toPeer ? !_isolation : true;
        if (acl is not null)
        {
            foreach (ref readonly var rule in acl.Effective.AsSpan())
            {
                if (rule.Matches(flow.IsIPv4, flow.Destination, flow.Protocol, port))
                {
                    allow = rule.Allow;
                    break;
                }
            }
        }
        var flows = _flows!;
        if (allow)
        {
            flows.Record(flow);
            return true;
        }
        if (flows.IsReply(flow))
        {
            Interlocked.Increment(ref replies);
            return true;
        }
        Interlocked.Increment(ref denied);
        return false;
    }

    /// <summary>The flow of a packet; <paramref name="port"/> is the destination port for TCP/UDP, -1 otherwise.</summary>
    private static bool TryReadFlow(ReadOnlySpan<byte> packet, out FlowKey flow, out int port)
    {
        flow = default;
        port = -1;
        if (!IpHeader.TryParse(packet, out var info)) return false;
        bool v4 = info.IsIPv4;
        UInt128 src = v4 ? BinaryPrimitives.ReadUInt32BigEndian(info.Source(packet)) : BinaryPrimitives.ReadUInt128BigEndian(info.Source(packet));
        UInt128 dst = v4 ? BinaryPrimitives.ReadUInt32BigEndian(info.Destination(packet)) : BinaryPrimitives.ReadUInt128BigEndian(info.Destination(packet));
        ushort sp = 0, dp = 0;
        var payload = info.Payload(packet);
        bool firstFragment = !v4 || (BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(6)) & 0x1FFF) == 0;
        if (firstFragment && info.Protocol is PacketWriterProtocols.Tcp or PacketWriterProtocols.Udp && payload.Length >= 4)
        {
            sp = BinaryPrimitives.ReadUInt16BigEndian(payload);
            dp = BinaryPrimitives.ReadUInt16BigEndian(payload.Slice(2));
            port = dp;
        }
        else if (firstFragment && info.Protocol is PacketWriterProtocols.Icmp or PacketWriterProtocols.IcmpV6 && payload.Length >= 8
                 && payload[0] is 0 or 8 or 128 or 129)
        {
            sp = dp = BinaryPrimitives.ReadUInt16BigEndian(payload.Slice(4));   // echo request/reply: the identifier both ways
        }
        flow = new FlowKey(v4, info.Protocol, src, dst, sp, dp);
        return true;
    }

    private static class PacketWriterProtocols
    {
        public const byte Icmp = 1, Tcp = 6, Udp = 17, IcmpV6 = 58;
    }
}
