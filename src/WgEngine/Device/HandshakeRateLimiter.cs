using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace WgEngine.Device;

/// <summary>
/// Per-source token bucket for handshake messages, with the semantics of wireguard-go's
/// ratelimiter/ratelimiter.go: 20 packets per second per source address, bursts of 5, entries idle
/// for more than a second forgotten. IPv6 sources are keyed by their /64, as the kernel's
/// ratelimiter.c does (wireguard-go keys the whole address): one host usually owns a whole /64.
/// Used by the handshake thread only (one caller at a time, so no locks). Steady state allocates
/// nothing: entries are structs in one dictionary, the sweep enumerates with a struct enumerator.
/// </summary>
internal sealed class HandshakeRateLimiter
{
    public const int PacketsPerSecond = 20;
    public const int PacketsBurstable = 5;
    public static readonly TimeSpan GarbageCollectTime = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time;
    // Tokens are kept in TimeProvider timestamp units, like wireguard-go keeps them in nanoseconds:
    // one elapsed tick earns one token, a packet costs a 20th of a second.
    private readonly long _packetCost;
    private readonly long _maxTokens;
    private readonly long _gcInterval;
    private readonly Dictionary<SourceKey, Entry> _table = new();
    private long _lastSweep;

    public HandshakeRateLimiter(TimeProvider time)
    {
        _time = time;
        _packetCost = time.TimestampFrequency / PacketsPerSecond;
        _maxTokens = _packetCost * PacketsBurstable;
        _gcInterval = (long)(GarbageCollectTime.TotalSeconds * time.TimestampFrequency);
        _lastSweep = time.GetTimestamp();
    }

    /// <summary>Sources currently tracked (for tests).</summary>
    public int Count => _table.Count;

    /// <summary>True when a handshake from this source may be processed now; spends one token.</summary>
    public bool Allow(SocketAddress source)
    {
        long now = _time.GetTimestamp();
        // wireguard-go sweeps from a goroutine every second; sweeping inline from the only caller is
        // the same policy without a timer thread or locks.
        if (now - _lastSweep > _gcInterval) Sweep(now);

        ref var entry = ref CollectionsMarshal.GetValueRefOrAddDefault(_table, KeyOf(source), out bool exists);
        if (!exists)
        {
            // A new source starts with a full bucket minus this packet (ratelimiter.go: maxTokens - packetCost).
            entry.Tokens = _maxTokens - _packetCost;
            entry.LastTime = now;
            return true;
        }
        entry.Tokens = Math.Min(_maxTokens, entry.Tokens + (now - entry.LastTime));
        entry.LastTime = now;
        // Strictly greater, as in wireguard-go.
        if (entry.Tokens > _packetCost)
        {
            entry.Tokens -= _packetCost;
            return true;
        }
        return false;
    }

    private void Sweep(long now)
    {
        _lastSweep = now;
        // Removing during enumeration is allowed for Dictionary (and allocates nothing).
        foreach (var kv in _table)
            if (now - kv.Value.LastTime > _gcInterval) _table.Remove(kv.Key);
    }

    /// <summary>IPv4: the address; IPv6: its first 64 bits; an IPv4-mapped IPv6 address counts as IPv4.</summary>
    internal static SourceKey KeyOf(SocketAddress source)
    {
        // sockaddr_in: family(2) port(2) addr(4); sockaddr_in6: family(2) port(2) flowinfo(4) addr(16).
        var buf = source.Buffer.Span;
        if (source.Family == AddressFamily.InterNetwork)
            return new SourceKey(4, BinaryPrimitives.ReadUInt32BigEndian(buf.Slice(4, 4)));
        var addr = buf.Slice(8, 16);
        if (BinaryPrimitives.ReadUInt64BigEndian(addr) == 0 && BinaryPrimitives.ReadUInt32BigEndian(addr[8..]) == 0xFFFF)
            return new SourceKey(4, BinaryPrimitives.ReadUInt32BigEndian(addr[12..]));
        return new SourceKey(6, BinaryPrimitives.ReadUInt64BigEndian(addr));
    }

    internal readonly record struct SourceKey(byte Family, ulong Bits);

    private struct Entry
    {
        public long Tokens;
        public long LastTime;
    }
}
