using System.Net;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>
/// Hands out host addresses (/32 or /128) of one prefix: never the network address, never the IPv4
/// broadcast address, never an excluded address (the gateway's own), never one in use.
/// Allocation is amortised O(log n): a cursor walks forward through never-used addresses, and freed
/// addresses below the cursor wait in a sorted set (lowest first), so nothing scans all peers.
/// Not thread-safe: the owner (VPNServer) serialises calls.
/// </summary>
internal sealed class AddressPool
{
    private readonly UInt128 _first, _last;          // usable host range, inclusive
    private readonly bool _ipv4;
    private readonly HashSet<UInt128> _used = new();
    private readonly HashSet<UInt128> _excluded = new();
    private readonly SortedSet<UInt128> _freed = new(); // released addresses below the cursor
    private UInt128 _cursor;
    private bool _cursorDone;                          // the cursor has passed _last

    public AddressPool(IpPrefix prefix, IEnumerable<IPAddress>? exclude = null)
    {
        Prefix = prefix.Network;
        _ipv4 = prefix.IsIPv4;
        UInt128 network = AddressMath.Network(prefix);
        int hostBits = prefix.MaxBits - prefix.Bits;
        UInt128 size = hostBits == 128 ? UInt128.MaxValue : (UInt128)1 << hostBits;
        UInt128 lastInPrefix = network + (size - 1);
        if (hostBits >= 2)
        {
            _first = network + 1;                                      // skip the network address
            _last = _ipv4 ? lastInPrefix - 1 : lastInPrefix;           // IPv4: skip broadcast
        }
        else
        {
            // /31 and /32 (or /127, /128): point-to-point or single host, every address is usable.
            _first = network;
            _last = lastInPrefix;
        }
        _cursor = _first;
        if (exclude is not null)
            foreach (var a in exclude)
                if (Contains(a)) _excluded.Add(AddressMath.ToNumber(a));
    }

    /// <summary>The pool's prefix with host bits cleared.</summary>
    public IpPrefix Prefix { get; }

    public bool IsIPv4 => _ipv4;

    /// <summary>Addresses currently marked in use.</summary>
    public int UsedCount => _used.Count;

    public bool Contains(IPAddress address)
    {
        if (AddressMath.IsV4(address) != _ipv4) return false;
        var n = AddressMath.ToNumber(address);
        return n >= _first && n <= _last;
    }

    public bool IsUsed(IPAddress address) => _used.Contains(AddressMath.ToNumber(address));

    /// <summary>
    /// Takes the lowest freed address, else the next never-used one. <paramref name="isTaken"/> lets the
    /// owner veto candidates covered by something the pool does not track (e.g. a peer's wider range).
    /// </summary>
    public bool TryAllocate(out IPAddress address, Func<IPAddress, bool>? isTaken = null)
    {
        while (_freed.Count > 0)
        {
            var n = _freed.Min;
            _freed.Remove(n);
            if (TryTake(n, isTaken, out address)) return true;
        }
        while (!_cursorDone)
        {
            var n = _cursor;
            if (_cursor == _last) _cursorDone = true; else _cursor++;
            if (TryTake(n, isTaken, out address)) return true;
        }
        address = IPAddress.None;
        return false;
    }

    /// <summary>Marks an address as used (a peer configured with it explicitly). False if outside or already used.</summary>
    public bool MarkUsed(IPAddress address)
    {
        if (!Contains(address)) return false;
        var n = AddressMath.ToNumber(address);
        _freed.Remove(n);
        return _used.Add(n);
    }

    /// <summary>Returns an address to the pool.</summary>
    public void Release(IPAddress address)
    {
        if (!Contains(address)) return;
        var n = AddressMath.ToNumber(address);
        if (!_used.Remove(n)) return;
        if (IsBehindCursor(n)) _freed.Add(n);
    }

    /// <summary>
    /// Makes every address of <paramref name="range"/> a candidate again (a wider range a peer held was
    /// removed): the cursor moves back to the range's start; used addresses are still skipped.
    /// </summary>
    public void ReleaseRange(IpPrefix range)
    {
        if (range.IsIPv4 != _ipv4) return;
        var start = AddressMath.Network(range);
        if (start < _first) start = _first;
        if (start > _last) return;
        if (IsBehindCursor(start)) { _cursor = start; _cursorDone = false; }
    }

    private bool IsBehindCursor(UInt128 n) => _cursorDone || n < _cursor;

    private bool TryTake(UInt128 n, Func<IPAddress, bool>? isTaken, out IPAddress address)
    {
        address = IPAddress.None;
        if (_used.Contains(n) || _excluded.Contains(n)) return false;
        var candidate = AddressMath.ToAddress(n, _ipv4);
        if (isTaken is not null && isTaken(candidate)) return false;
        _used.Add(n);
        address = candidate;
        return true;
    }
}
