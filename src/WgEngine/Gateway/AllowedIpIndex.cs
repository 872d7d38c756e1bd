using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>
/// Who holds which AllowedIPs prefix, to refuse overlaps quickly. Entries are kept per family and per
/// prefix length, keyed by network number. "Does anything contain P?" costs one lookup per prefix
/// length in use (a handful), so adding host routes stays fast with 100,000 peers; only "does P
/// contain anything?" for a wider P scans the entries longer than P (rare: site-to-site ranges).
/// Not thread-safe: the owner serialises calls.
/// </summary>
internal sealed class AllowedIpIndex<TOwner> where TOwner : class
{
    private readonly Dictionary<UInt128, TOwner>?[] _v4 = new Dictionary<UInt128, TOwner>?[33];
    private readonly Dictionary<UInt128, TOwner>?[] _v6 = new Dictionary<UInt128, TOwner>?[129];

    /// <summary>Adds a prefix (its network) for an owner. An identical prefix already present is replaced.</summary>
    public void Add(IpPrefix prefix, TOwner owner)
    {
        var table = Table(prefix.IsIPv4);
        (table[prefix.Bits] ??= new())[AddressMath.Network(prefix)] = owner;
    }

    /// <summary>Removes a prefix if <paramref name="owner"/> holds it.</summary>
    public void Remove(IpPrefix prefix, TOwner owner)
    {
        var d = Table(prefix.IsIPv4)[prefix.Bits];
        var net = AddressMath.Network(prefix);
        if (d is not null && d.TryGetValue(net, out var o) && ReferenceEquals(o, owner)) d.Remove(net);
    }

    /// <summary>The owner of some prefix that shares an address with <paramref name="prefix"/>, or null.</summary>
    public TOwner? FindOverlap(IpPrefix prefix)
    {
        var table = Table(prefix.IsIPv4);
        int max = prefix.MaxBits;
        UInt128 net = AddressMath.Network(prefix);
        // Entries as wide as or wider than the prefix: at most one network per length can contain it.
        for (int len = 0; len <= prefix.Bits; len++)
        {
            var d = table[len];
            if (d is { Count: > 0 } && d.TryGetValue(net & AddressMath.NetMask(len, max), out var o)) return o;
        }
        // Narrower entries inside the prefix.
        var mask = AddressMath.NetMask(prefix.Bits, max);
        for (int len = prefix.Bits + 1; len <= max; len++)
        {
            var d = table[len];
            if (d is not { Count: > 0 }) continue;
            foreach (var (n, o) in d)
                if ((n & mask) == net) return o;
        }
        return null;
    }

    private Dictionary<UInt128, TOwner>?[] Table(bool ipv4) => ipv4 ? _v4 : _v6;
}
