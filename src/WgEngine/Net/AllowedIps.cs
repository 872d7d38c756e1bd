using System.Buffers.Binary;
using System.Net;

namespace WgEngine.Net;

/// <summary>
/// Cryptokey routing table: maps IPv4/IPv6 prefixes to an owner (a peer) with longest-prefix match,
/// one path-compressed binary trie per family (as in the kernel's allowedips.c).
/// <para>Concurrency: <see cref="Lookup(ReadOnlySpan{byte})"/> may be called from any number of threads
/// at once, takes no lock and allocates nothing; it sees each change either completely or not at all.
/// Writers (Insert/Remove/RemoveAll/Clear) serialise on an internal lock. Owners are compared by
/// reference.</para>
/// </summary>
internal sealed class AllowedIps<T> where T : class
{
    private readonly PrefixTrie<uint, T> _v4 = new();
    private readonly PrefixTrie<UInt128, T> _v6 = new();

    // Owner -> its trie nodes: a single node, or a List<object> when it owns several. Lets
    // RemoveAll/GetPrefixes run in time proportional to the owner's prefixes, not the table.
    private readonly Dictionary<T, object> _byOwner = new(ReferenceEqualityComparer.Instance);
    private readonly Lock _writeLock = new();
    private int _count;

    /// <summary>Number of prefixes in the table (both families).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Routes prefix to value; host bits past the prefix length are ignored. An existing
    /// identical prefix changes owner.</summary>
    public void Insert(IpPrefix prefix, T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        bool isV4 = ReadKey(prefix, out uint k4, out UInt128 k6);
        lock (_writeLock)
        {
            T? previous;
            object node = isV4
                ? _v4.Insert(k4, prefix.Bits, value, out previous)
                : _v6.Insert(k6, prefix.Bits, value, out previous);
            if (ReferenceEquals(previous, value)) return;
            if (previous is null) _count++;
            else RemoveFromIndex(previous, node);
            AddToIndex(value, node);
        }
    }

    /// <summary>Removes prefix when value owns it; returns false (and changes nothing) otherwise.</summary>
    public bool Remove(IpPrefix prefix, T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        bool isV4 = ReadKey(prefix, out uint k4, out UInt128 k6);
        lock (_writeLock)
        {
            if (isV4)
            {
                var node = _v4.FindExact(k4, prefix.Bits);
                if (node is null || !ReferenceEquals(node.Value, value)) return false;
                _v4.Unlink(node);
                RemoveFromIndex(value, node);
            }
            else
            {
                var node = _v6.FindExact(k6, prefix.Bits);
                if (node is null || !ReferenceEquals(node.Value, value)) return false;
                _v6.Unlink(node);
                RemoveFromIndex(value, node);
            }
            _count--;
            return true;
        }
    }

    /// <summary>Removes every prefix owned by value.</summary>
    public void RemoveAll(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_writeLock)
        {
            if (!_byOwner.Remove(value, out object? entry)) return;
            if (entry is List<object> list)
            {
                foreach (object node in list) UnlinkAny(node);
                _count -= list.Count;
            }
            else
            {
                UnlinkAny(entry);
                _count--;
            }
        }
    }

    /// <summary>The owner of the longest prefix containing address (4 or 16 bytes, network order),
    /// or null. Lock-free and allocation-free.</summary>
    public T? Lookup(ReadOnlySpan<byte> address) => address.Length switch
    {
        4 => _v4.Lookup(BinaryPrimitives.ReadUInt32BigEndian(address)),
        16 => _v6.Lookup(BinaryPrimitives.ReadUInt128BigEndian(address)),
        _ => throw new ArgumentException("An address is 4 (IPv4) or 16 (IPv6) bytes.", nameof(address)),
    };

    /// <summary>Convenience lookup; an IPv4-mapped IPv6 address is looked up as IPv4, like IpPrefix does.</summary>
    public T? Lookup(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out int written))
            throw new ArgumentException("Only IPv4 and IPv6 addresses are supported.", nameof(address));
        return Lookup(bytes[..written]);
    }

    /// <summary>The prefixes owned by value (host bits cleared), IPv4 first, in no other order.</summary>
    public List<IpPrefix> GetPrefixes(T value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var result = new List<IpPrefix>();
        lock (_writeLock)
        {
            if (!_byOwner.TryGetValue(value, out object? entry)) return result;
            if (entry is List<object> list)
            {
                foreach (object node in list) AddPrefix(result, node, v4: true);
                foreach (object node in list) AddPrefix(result, node, v4: false);
            }
            else AddPrefix(result, entry, entry is PrefixTrie<uint, T>.Node);
        }
        return result;
    }

    public void Clear()
    {
        lock (_writeLock)
        {
            _v4.Clear();
            _v6.Clear();
            _byOwner.Clear();
            _count = 0;
        }
    }

    private static bool ReadKey(IpPrefix prefix, out uint k4, out UInt128 k6)
    {
        if (prefix.Address is null) throw new ArgumentException("The prefix is empty (default).", nameof(prefix));
        Span<byte> bytes = stackalloc byte[16];
        prefix.Address.TryWriteBytes(bytes, out int written);
        k4 = 0;
        k6 = UInt128.Zero;
        if (written == 4)
        {
            k4 = BinaryPrimitives.ReadUInt32BigEndian(bytes);
            return true;
        }
        k6 = BinaryPrimitives.ReadUInt128BigEndian(bytes);
        return false;
    }

    private void UnlinkAny(object node)
    {
        if (node is PrefixTrie<uint, T>.Node n4) _v4.Unlink(n4);
        else _v6.Unlink((PrefixTrie<UInt128, T>.Node)node);
    }

    private void AddToIndex(T owner, object node)
    {
        if (!_byOwner.TryGetValue(owner, out object? entry)) _byOwner[owner] = node;
        else if (entry is List<object> list) list.Add(node);
        else _byOwner[owner] = new List<object>(2) { entry, node };
    }

    private void RemoveFromIndex(T owner, object node)
    {
        if (!_byOwner.TryGetValue(owner, out object? entry)) return;
        if (entry is List<object> list)
        {
            list.Remove(node);
            if (list.Count == 1) _byOwner[owner] = list[0];
        }
        else if (ReferenceEquals(entry, node)) _byOwner.Remove(owner);
    }

    private static void AddPrefix(List<IpPrefix> result, object node, bool v4)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (node is PrefixTrie<uint, T>.Node n4)
        {
            if (!v4) return;
            BinaryPrimitives.WriteUInt32BigEndian(bytes, n4.Key);
            result.Add(new IpPrefix(new IPAddress(bytes[..4]), n4.Cidr));
        }
        else if (!v4)
        {
            var n6 = (PrefixTrie<UInt128, T>.Node)node;
            BinaryPrimitives.WriteUInt128BigEndian(bytes, n6.Key);
            result.Add(new IpPrefix(new IPAddress(bytes), n6.Cidr));
        }
    }
}
