using System.Buffers.Binary;
using WgEngine.Crypto;

namespace WgEngine.Egress;

/// <summary>
/// What identifies a mapping: the peer, its inner source address and the 16-bit port (UDP) or echo
/// identifier (ICMP), per IP version. Addresses are stored as two 64-bit halves (IPv4 in the low bytes).
/// </summary>
internal readonly struct FlowKey : IEquatable<FlowKey>
{
    public readonly WgKey Peer;
    public readonly ulong AddressHigh, AddressLow;
    public readonly ushort Id;
    public readonly bool IsIPv4;

    public FlowKey(WgKey peer, ReadOnlySpan<byte> address, ushort id)
    {
        Peer = peer;
        Id = id;
        IsIPv4 = address.Length == 4;
        if (IsIPv4)
        {
            AddressHigh = 0;
            AddressLow = BinaryPrimitives.ReadUInt32BigEndian(address);
        }
        else
        {
            AddressHigh = BinaryPrimitives.ReadUInt64BigEndian(address);
            AddressLow = BinaryPrimitives.ReadUInt64BigEndian(address.Slice(8));
        }
    }

    /// <summary>Writes the source address back (4 or 16 bytes) and returns its length.</summary>
    public int WriteAddress(Span<byte> destination)
    {
        if (IsIPv4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)AddressLow);
            return 4;
        }
        BinaryPrimitives.WriteUInt64BigEndian(destination, AddressHigh);
        BinaryPrimitives.WriteUInt64BigEndian(destination.Slice(8), AddressLow);
        return 16;
    }

    public bool Equals(FlowKey o) => Id == o.Id && IsIPv4 == o.IsIPv4 && AddressLow == o.AddressLow && AddressHigh == o.AddressHigh && Peer.Equals(o.Peer);
    public override bool Equals(object? obj) => obj is FlowKey k && Equals(k);
    public override int GetHashCode() => HashCode.Combine(Peer, AddressHigh, AddressLow, Id, IsIPv4);
}

/// <summary>A mapping with a host socket; closed by the table when idle or on dispose.</summary>
internal abstract class NatFlow
{
    protected NatFlow(FlowKey key, long now)
    {
        Key = key;
        _lastActive = now;
    }

    public FlowKey Key { get; }
    private long _lastActive;
    public long LastActive => Volatile.Read(ref _lastActive);
    public void Touch(long now) => Volatile.Write(ref _lastActive, now);

    /// <summary>Closes the host socket; the receive loop ends on its own.</summary>
    public abstract void Close();
}

/// <summary>
/// The mappings of one protocol with per-peer and total limits, and one idle sweep for all of them
/// (no timer per flow). Lookups take a short lock; creating, sweeping and closing happen outside the
/// hot lookup path.
/// </summary>
internal sealed class NatTable<TFlow> where TFlow : NatFlow
{
    private readonly object _lock = new();
    private readonly Dictionary<FlowKey, TFlow> _flows = new();
    private readonly Dictionary<WgKey, int> _perPeer = new();
    private readonly int _maxPerPeer, _max;
    private bool _closed;

    public NatTable(int maxPerPeer, int max)
    {
        _maxPerPeer = maxPerPeer;
        _max = max;
    }

    public int Count { get { lock (_lock) return _flows.Count; } }

    public bool TryGet(in FlowKey key, out TFlow flow)
    {
        lock (_lock) return _flows.TryGetValue(key, out flow!);
    }

    public enum AddResult { Added, Exists, Limited, Closed }

    /// <summary>Adds <paramref name="flow"/> unless a limit bites or another thread added the same key first
    /// (then <paramref name="existing"/> is that flow and the caller closes its own).</summary>
    public AddResult TryAdd(TFlow flow, out TFlow existing)
    {
        lock (_lock)
        {
            existing = flow;
            if (_closed) return AddResult.Closed;
            if (_flows.TryGetValue(flow.Key, out var other)) { existing = other; return AddResult.Exists; }
            _perPeer.TryGetValue(flow.Key.Peer, out int n);
            if (n >= _maxPerPeer || _flows.Count >= _max) return AddResult.Limited;
            _flows.Add(flow.Key, flow);
            _perPeer[flow.Key.Peer] = n + 1;
            return AddResult.Added;
        }
    }

    /// <summary>True when there is room for one more flow of this peer (a cheap pre-check before opening a socket).</summary>
    public bool HasRoom(WgKey peer)
    {
        lock (_lock)
        {
            _perPeer.TryGetValue(peer, out int n);
            return !_closed && n < _maxPerPeer && _flows.Count < _max;
        }
    }

    /// <summary>Removes and returns the flows idle since before <paramref name="idleBefore"/>; the caller closes them.</summary>
    public List<TFlow> RemoveIdle(long idleBefore)
    {
        var removed = new List<TFlow>();
        lock (_lock)
        {
            foreach (var f in _flows.Values)
                if (f.LastActive < idleBefore) removed.Add(f);
            foreach (var f in removed) RemoveLocked(f);
        }
        return removed;
    }

    /// <summary>Removes one flow (its socket failed); false if it was already gone.</summary>
    public bool Remove(TFlow flow)
    {
        lock (_lock)
        {
            if (!_flows.TryGetValue(flow.Key, out var f) || !ReferenceEquals(f, flow)) return false;
            RemoveLocked(flow);
            return true;
        }
    }

    /// <summary>Empties the table for good and returns what was in it.</summary>
    public List<TFlow> Close()
    {
        lock (_lock)
        {
            _closed = true;
            var all = new List<TFlow>(_flows.Values);
            _flows.Clear();
            _perPeer.Clear();
            return all;
        }
    }

    private void RemoveLocked(TFlow flow)
    {
        _flows.Remove(flow.Key);
        int n = _perPeer[flow.Key.Peer] - 1;
        if (n == 0) _perPeer.Remove(flow.Key.Peer);
        else _perPeer[flow.Key.Peer] = n;
    }
}
