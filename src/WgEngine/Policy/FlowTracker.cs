namespace WgEngine.Policy;

/// <summary>
/// Remembers the flows the policy allowed (protocol, addresses, ports), so that a reply in the other
/// direction passes even where the replying peer's own rules or client isolation would refuse it
/// (site-to-site: one site may open connections, the other only answers). A fixed table of 64-bit
/// fingerprints (keyed with the process's random HashCode seed) with linear probing over a few slots and
/// an expiry per entry: no allocation per packet, bounded memory, lock-free. Concurrent writers may lose
/// an entry (the next packet of the flow records it again); a stale entry only lives until its expiry.
/// </summary>
internal sealed class FlowTracker
{
    private const int Probe = 8;
    private readonly long[] _keys;
    private readonly long[] _expires;
    private readonly int _mask;
    private readonly TimeProvider _time;
    private readonly long _lifetime;

    /// <param name="capacity">Slots (rounded up to a power of two).</param>
    /// <param name="lifetime">How long after its last allowed packet a flow's replies still pass.</param>
    public FlowTracker(TimeProvider time, int capacity = 1 << 14, TimeSpan? lifetime = null)
    {
        _time = time;
        int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(Probe, capacity));
        _keys = new long[size];
        _expires = new long[size];
        _mask = size - 1;
        _lifetime = (long)((lifetime ?? TimeSpan.FromMinutes(3)).TotalSeconds * time.TimestampFrequency);
    }

    /// <summary>Records (or refreshes) the flow of a packet the policy allowed.</summary>
    public void Record(in FlowKey flow)
    {
        long key = flow.Fingerprint(reverse: false);
        long now = _time.GetTimestamp();
        int start = (int)key & _mask;
        int victim = start;
        long oldest = long.MaxValue;
        for (int i = 0; i < Probe; i++)
        {
            int slot = (start + i) & _mask;
            long k = Volatile.Read(ref _keys[slot]);
            long e = Volatile.Read(ref _expires[slot]);
            if (k == key || e <= now)
            {
                victim = slot;
                break;
            }
            if (e < oldest) { oldest = e; victim = slot; }
        }
        Volatile.Write(ref _expires[victim], now + _lifetime);
        Volatile.Write(ref _keys[victim], key);
    }

    /// <summary>Whether the packet answers a flow allowed in the other direction that has not expired.</summary>
    public bool IsReply(in FlowKey packet)
    {
        long key = packet.Fingerprint(reverse: true);
        long now = _time.GetTimestamp();
        int start = (int)key & _mask;
        for (int i = 0; i < Probe; i++)
        {
            int slot = (start + i) & _mask;
            if (Volatile.Read(ref _keys[slot]) == key) return Volatile.Read(ref _expires[slot]) > now;
        }
        return false;
    }
}

/// <summary>What identifies a flow: protocol, both addresses (IPv4 in the low 32 bits) and ports (ICMP echo: the identifier).</summary>
internal readonly struct FlowKey(bool v4, byte protocol, UInt128 source, UInt128 destination, ushort sourcePort, ushort destinationPort)
{
    public readonly bool IsIPv4 = v4;
    public readonly byte Protocol = protocol;
    public readonly UInt128 Source = source, Destination = destination;
    public readonly ushort SourcePort = sourcePort, DestinationPort = destinationPort;

    /// <summary>The fingerprint of this flow, or (reverse) of the flow this packet would answer. Never 0 (free slots are 0).</summary>
    public long Fingerprint(bool reverse)
    {
        var (a, b, pa, pb) = reverse ? (Destination, Source, DestinationPort, SourcePort) : (Source, Destination, SourcePort, DestinationPort);
        int h1 = HashCode.Combine(a, b, pa, pb, Protocol, IsIPv4);
        int h2 = HashCode.Combine(b, pb, a, Protocol, pa, 0x5bd1e995);
        long f = ((long)h1 << 32) | (uint)h2;
        return f == 0 ? 1 : f;
    }
}
