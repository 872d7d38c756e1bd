using System.Net;
using WgEngine.Device;
using WgEngine.Net;
using Xunit.Abstractions;

namespace WgEngine.Tests.Device;

public class AllowedIpsTests(ITestOutputHelper output)
{
    private sealed class Peer(string name)
    {
        public string Name { get; } = name;
        public override string ToString() => Name;
    }

    private static IpPrefix P(string text) => IpPrefix.Parse(text);
    private static IPAddress A(string text) => IPAddress.Parse(text);

    [Fact]
    public void LongestPrefixWins()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b"), c = new("c"), d = new("d");
        t.Insert(P("10.1.2.0/24"), c);      // inserted out of order on purpose
        t.Insert(P("10.0.0.0/8"), a);
        t.Insert(P("10.1.2.3/32"), d);
        t.Insert(P("10.1.0.0/16"), b);

        Assert.Same(d, t.Lookup(A("10.1.2.3")));
        Assert.Same(c, t.Lookup(A("10.1.2.4")));
        Assert.Same(b, t.Lookup(A("10.1.3.1")));
        Assert.Same(a, t.Lookup(A("10.200.0.1")));
        Assert.Null(t.Lookup(A("11.0.0.1")));
        Assert.Null(t.Lookup(A("9.255.255.255")));
        Assert.Equal(4, t.Count);
    }

    [Fact]
    public void LongestPrefixWins_IPv6()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b"), c = new("c");
        t.Insert(P("fd00::/8"), a);
        t.Insert(P("fd00:1234::/32"), b);
        t.Insert(P("fd00:1234::1/128"), c);
        Assert.Same(c, t.Lookup(A("fd00:1234::1")));
        Assert.Same(b, t.Lookup(A("fd00:1234::2")));
        Assert.Same(b, t.Lookup(A("fd00:1234:ffff::")));
        Assert.Same(a, t.Lookup(A("fdff::1")));
        Assert.Null(t.Lookup(A("fe80::1")));
    }

    [Fact]
    public void HostBitsPastThePrefixAreIgnored()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        t.Insert(P("10.0.0.7/24"), a);
        Assert.Same(a, t.Lookup(A("10.0.0.200")));
        Assert.Equal([P("10.0.0.0/24")], t.GetPrefixes(a));

        t.Insert(P("10.0.0.99/24"), b);     // same network: replaces the owner
        Assert.Equal(1, t.Count);
        Assert.Same(b, t.Lookup(A("10.0.0.1")));
        Assert.True(t.Remove(P("10.0.0.1/24"), b));
        Assert.Equal(0, t.Count);
        Assert.Null(t.Lookup(A("10.0.0.1")));
    }

    [Fact]
    public void DefaultRoutes_PerFamily()
    {
        var t = new AllowedIps<Peer>();
        Peer v4 = new("v4"), v6 = new("v6"), host = new("host");
        t.Insert(P("0.0.0.0/0"), v4);
        Assert.Same(v4, t.Lookup(A("1.2.3.4")));
        Assert.Same(v4, t.Lookup(A("255.255.255.255")));
        Assert.Null(t.Lookup(A("2001:db8::1")));

        t.Insert(P("::/0"), v6);
        Assert.Same(v6, t.Lookup(A("2001:db8::1")));
        Assert.Same(v6, t.Lookup(A("::")));

        t.Insert(P("192.168.1.1/32"), host);
        Assert.Same(host, t.Lookup(A("192.168.1.1")));
        Assert.Same(v4, t.Lookup(A("192.168.1.2")));
        Assert.True(t.Remove(P("0.0.0.0/0"), v4));
        Assert.Null(t.Lookup(A("192.168.1.2")));
        Assert.Same(host, t.Lookup(A("192.168.1.1")));
    }

    [Fact]
    public void HostRoutes_MatchOnlyTheirAddress()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        t.Insert(P("10.9.8.7/32"), a);
        t.Insert(P("fd00::abcd/128"), b);
        Assert.Same(a, t.Lookup(A("10.9.8.7")));
        Assert.Null(t.Lookup(A("10.9.8.6")));
        Assert.Null(t.Lookup(A("10.9.8.8")));
        Assert.Same(b, t.Lookup(A("fd00::abcd")));
        Assert.Null(t.Lookup(A("fd00::abcc")));
        Assert.Null(t.Lookup(A("fd00::abce")));
    }

    [Fact]
    public void InsertingAnExistingPrefix_ReplacesItsOwner()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        t.Insert(P("10.0.0.0/24"), a);
        t.Insert(P("10.0.1.0/24"), a);
        t.Insert(P("10.0.0.0/24"), b);
        Assert.Equal(2, t.Count);
        Assert.Same(b, t.Lookup(A("10.0.0.1")));
        Assert.Equal([P("10.0.1.0/24")], t.GetPrefixes(a));
        Assert.Equal([P("10.0.0.0/24")], t.GetPrefixes(b));

        t.Insert(P("10.0.0.0/24"), b);      // same owner again: nothing changes
        Assert.Equal(2, t.Count);
        Assert.Single(t.GetPrefixes(b));
    }

    [Fact]
    public void RemoveByNonOwner_IsANoOp()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        t.Insert(P("10.0.0.0/24"), a);
        Assert.False(t.Remove(P("10.0.0.0/24"), b));
        Assert.False(t.Remove(P("10.0.0.0/25"), a));    // a prefix that is not in the table
        Assert.False(t.Remove(P("10.0.0.0/23"), a));
        Assert.Same(a, t.Lookup(A("10.0.0.1")));
        Assert.Equal(1, t.Count);
        Assert.True(t.Remove(P("10.0.0.0/24"), a));
        Assert.False(t.Remove(P("10.0.0.0/24"), a));
    }

    [Fact]
    public void RemovingABranchPoint_KeepsBothSidesReachable()
    {
        var t = new AllowedIps<Peer>();
        Peer top = new("top"), left = new("left"), right = new("right");
        t.Insert(P("10.0.0.0/16"), top);
        t.Insert(P("10.0.1.0/24"), left);
        t.Insert(P("10.0.128.0/24"), right);
        Assert.True(t.Remove(P("10.0.0.0/16"), top));
        Assert.Same(left, t.Lookup(A("10.0.1.9")));
        Assert.Same(right, t.Lookup(A("10.0.128.9")));
        Assert.Null(t.Lookup(A("10.0.2.9")));
        Assert.True(t.Remove(P("10.0.1.0/24"), left));
        Assert.Same(right, t.Lookup(A("10.0.128.9")));
        t.Insert(P("10.0.0.0/16"), top);
        Assert.Same(top, t.Lookup(A("10.0.1.9")));
        Assert.Same(right, t.Lookup(A("10.0.128.9")));
    }

    [Fact]
    public void RemoveAll_RemovesEveryPrefixOfThatOwnerOnly()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        t.Insert(P("10.0.0.0/8"), a);
        t.Insert(P("10.1.0.0/16"), b);
        t.Insert(P("10.1.1.1/32"), a);
        t.Insert(P("fd00::/64"), a);
        t.Insert(P("fd00::1/128"), b);
        t.RemoveAll(a);
        Assert.Equal(2, t.Count);
        Assert.Empty(t.GetPrefixes(a));
        Assert.Null(t.Lookup(A("10.2.0.1")));
        Assert.Same(b, t.Lookup(A("10.1.1.1")));
        Assert.Null(t.Lookup(A("fd00::2")));
        Assert.Same(b, t.Lookup(A("fd00::1")));
        t.RemoveAll(a);                     // nothing left: harmless
        Assert.Equal(2, t.Count);
    }

    [Fact]
    public void GetPrefixes_RoundTrip()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a"), b = new("b");
        IpPrefix[] mine = [P("0.0.0.0/0"), P("10.0.0.0/8"), P("192.168.7.1/32"), P("::/0"), P("fd00:1::/48"), P("2001:db8::5/128")];
        foreach (var p in mine) t.Insert(p, a);
        t.Insert(P("10.1.0.0/16"), b);
        var got = t.GetPrefixes(a);
        Assert.Equal(mine.Length, got.Count);
        Assert.True(got.Take(3).All(p => p.IsIPv4), "IPv4 prefixes come first");
        Assert.Equal(mine.Select(p => p.ToString()).Order(), got.Select(p => p.ToString()).Order());
        Assert.Empty(t.GetPrefixes(new Peer("unknown")));

        // Feeding the output back in to another table reproduces the routing.
        var copy = new AllowedIps<Peer>();
        foreach (var p in got) copy.Insert(p, a);
        foreach (var addr in new[] { "10.2.3.4", "192.168.7.1", "8.8.8.8", "fd00:1::9", "2001:db8::5", "2001:db8::6" })
            Assert.Same(t.Lookup(A(addr)) == a ? a : null, copy.Lookup(A(addr)));
    }

    [Fact]
    public void IPv4LookupsNeverMatchIPv6Entries()
    {
        var t = new AllowedIps<Peer>();
        Peer v6 = new("v6");
        t.Insert(P("::/0"), v6);
        t.Insert(P("::a00:1/128"), v6);     // ::10.0.0.1 (IPv4-compatible, an IPv6 address)
        Assert.Null(t.Lookup(A("10.0.0.1")));
        Assert.Null(t.Lookup(A("0.0.0.0")));
        Assert.Null(t.Lookup(stackalloc byte[] { 10, 0, 0, 1 }));
        Assert.Same(v6, t.Lookup(A("::a00:1")));

        var t2 = new AllowedIps<Peer>();
        t2.Insert(P("0.0.0.0/0"), v6);
        Assert.Null(t2.Lookup(A("::a00:1")));
        Assert.Null(t2.Lookup(new byte[16]));
    }

    [Fact]
    public void SpanLookup_UsesNetworkOrder_AndRejectsOtherLengths()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a");
        t.Insert(P("10.20.0.0/16"), a);
        Assert.Same(a, t.Lookup(new byte[] { 10, 20, 30, 40 }));
        Assert.Null(t.Lookup(new byte[] { 40, 30, 20, 10 }));
        Assert.Throws<ArgumentException>(() => t.Lookup(new byte[5]));
        Assert.Throws<ArgumentException>(() => t.Lookup(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void IPv4MappedAddress_IsLookedUpAsIPv4()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a");
        t.Insert(P("10.0.0.0/8"), a);
        Assert.Same(a, t.Lookup(A("::ffff:10.1.2.3")));
    }

    [Fact]
    public void Clear_EmptiesEverything()
    {
        var t = new AllowedIps<Peer>();
        Peer a = new("a");
        t.Insert(P("10.0.0.0/8"), a);
        t.Insert(P("fd00::/8"), a);
        t.Clear();
        Assert.Equal(0, t.Count);
        Assert.Null(t.Lookup(A("10.0.0.1")));
        Assert.Null(t.Lookup(A("fd00::1")));
        Assert.Empty(t.GetPrefixes(a));
        t.Insert(P("10.0.0.0/8"), a);
        Assert.Same(a, t.Lookup(A("10.0.0.1")));
    }

    [Fact]
    public void Lookup_AllocatesNothing()
    {
        var t = new AllowedIps<Peer>();
        var rng = new Random(7);
        for (int i = 0; i < 1000; i++)
        {
            t.Insert(new IpPrefix(new IPAddress(rng.NextInt64(0, 1L << 32) & 0xFFFFFFFF), rng.Next(8, 33)), new Peer("p"));
            var v6 = new byte[16];
            rng.NextBytes(v6);
            t.Insert(new IpPrefix(new IPAddress(v6), rng.Next(16, 129)), new Peer("q"));
        }
        byte[] v4Addr = [10, 1, 2, 3], v6Addr = new byte[16];
        rng.NextBytes(v6Addr);
        int hits = 0;
        for (int i = 0; i < 1000; i++) hits += (t.Lookup(v4Addr) is null ? 0 : 1) + (t.Lookup(v6Addr) is null ? 0 : 1); // warm up
        // Tiered JIT may recompile mid-run and allocate once; a per-lookup allocation shows in every run.
        long best = long.MaxValue;
        for (int run = 0; run < 5; run++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20_000; i++)
            {
                v4Addr[3] = (byte)i;
                v6Addr[15] = (byte)i;
                hits += (t.Lookup(v4Addr) is null ? 0 : 1) + (t.Lookup(v6Addr) is null ? 0 : 1);
            }
            best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, best);
        GC.KeepAlive(hits);
    }

    // ---- Randomized comparison against a naive model (the idea of wireguard-go's
    // device/allowedips_rand_test.go: random prefixes for random peers, then random lookups). ----

    /// <summary>Linear-scan reference: keys are held in the low maxBits bits of a UInt128.</summary>
    private sealed class SlowTable(int maxBits)
    {
        public readonly List<(UInt128 Key, int Cidr, Peer Peer)> Entries = [];
        private readonly UInt128 _family = maxBits == 128 ? UInt128.MaxValue : (UInt128.One << maxBits) - 1;

        public UInt128 Mask(UInt128 key, int cidr) => cidr == 0 ? UInt128.Zero : key & (_family << (maxBits - cidr)) & _family;

        public void Insert(UInt128 key, int cidr, Peer peer)
        {
            key = Mask(key, cidr);
            int i = Entries.FindIndex(e => e.Key == key && e.Cidr == cidr);
            if (i >= 0) Entries[i] = (key, cidr, peer);
            else Entries.Add((key, cidr, peer));
        }

        public bool Remove(UInt128 key, int cidr, Peer peer)
        {
            key = Mask(key, cidr);
            return Entries.RemoveAll(e => e.Key == key && e.Cidr == cidr && e.Peer == peer) > 0;
        }

        public Peer? Lookup(UInt128 address)
        {
            Peer? best = null;
            int bestCidr = -1;
            foreach (var e in Entries)
                if (e.Cidr > bestCidr && Mask(address, e.Cidr) == e.Key) (best, bestCidr) = (e.Peer, e.Cidr);
            return best;
        }
    }

    private static IpPrefix ToPrefix(UInt128 key, int cidr, int maxBits)
    {
        var bytes = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, key);
        return new IpPrefix(new IPAddress(maxBits == 32 ? bytes.AsSpan(12) : bytes), cidr);
    }

    private static byte[] ToBytes(UInt128 key, int maxBits)
    {
        var bytes = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, key);
        return maxBits == 32 ? bytes[12..] : bytes;
    }

    private static UInt128 RandomKey(Random rng, int maxBits)
    {
        Span<byte> b = stackalloc byte[16];
        rng.NextBytes(b);
        UInt128 key = System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(b);
        if (maxBits == 32) key &= uint.MaxValue;
        // Half of the keys share a /8 (10/8 or fd00::/8) so that prefixes nest and split often.
        if (rng.Next(2) == 0)
        {
            int shift = maxBits - 8;
            key = (key & ((UInt128.One << shift) - 1)) | ((UInt128)(maxBits == 32 ? 10u : 0xFDu) << shift);
        }
        return key;
    }

    private static int RandomCidr(Random rng, int maxBits) =>
        rng.Next(10) == 0 ? rng.Next(0, 9) : rng.Next(8, maxBits + 1);

    private static UInt128 RandomLookupAddress(Random rng, SlowTable model, int maxBits)
    {
        UInt128 random = RandomKey(rng, maxBits);
        if (model.Entries.Count == 0 || rng.Next(2) == 0) return random;
        // Inside an existing prefix, with random host bits.
        var e = model.Entries[rng.Next(model.Entries.Count)];
        return e.Key | (random & ~model.Mask(UInt128.MaxValue, e.Cidr) & (maxBits == 32 ? uint.MaxValue : UInt128.MaxValue));
    }

    private static void AssertSameAsModel(AllowedIps<Peer> table, SlowTable model, Random rng, int maxBits, int lookups)
    {
        for (int i = 0; i < lookups; i++)
        {
            UInt128 address = RandomLookupAddress(rng, model, maxBits);
            Peer? expected = model.Lookup(address);
            Peer? actual = table.Lookup(ToBytes(address, maxBits));
            if (!ReferenceEquals(expected, actual))
                Assert.Fail($"lookup {i} of {ToPrefix(address, maxBits, maxBits)}: expected {expected?.Name ?? "none"}, got {actual?.Name ?? "none"}");
        }
    }

    [Theory]
    [InlineData(32, 1)]
    [InlineData(32, 2)]
    [InlineData(128, 3)]
    [InlineData(128, 4)]
    public void Randomized_MatchesNaiveModel(int maxBits, int seed)
    {
        const int peerCount = 64, prefixesPerPeer = 64, lookups = 10_000;
        var rng = new Random(seed);
        var table = new AllowedIps<Peer>();
        var model = new SlowTable(maxBits);
        var peers = Enumerable.Range(0, peerCount).Select(i => new Peer($"peer{i}")).ToArray();

        for (int i = 0; i < peerCount * prefixesPerPeer; i++)
        {
            Peer peer = peers[rng.Next(peerCount)];
            UInt128 key = RandomKey(rng, maxBits);
            int cidr = RandomCidr(rng, maxBits);
            table.Insert(ToPrefix(key, cidr, maxBits), peer);   // host bits left in on purpose
            model.Insert(key, cidr, peer);
        }
        Assert.Equal(model.Entries.Count, table.Count);
        AssertSameAsModel(table, model, rng, maxBits, lookups);

        // Removals: whole peers, single prefixes by their owner, and attempts by non-owners.
        foreach (var peer in peers.Where((_, i) => i % 4 == 0))
        {
            table.RemoveAll(peer);
            model.Entries.RemoveAll(e => e.Peer == peer);
        }
        for (int i = 0; i < 300 && model.Entries.Count > 0; i++)
        {
            var e = model.Entries[rng.Next(model.Entries.Count)];
            bool byOwner = rng.Next(2) == 0;
            Peer who = byOwner ? e.Peer : peers[rng.Next(peerCount)];
            bool expected = model.Remove(e.Key, e.Cidr, who);
            Assert.Equal(expected, table.Remove(ToPrefix(e.Key, e.Cidr, maxBits), who));
        }
        Assert.Equal(model.Entries.Count, table.Count);
        AssertSameAsModel(table, model, rng, maxBits, lookups);

        foreach (var peer in peers)
        {
            var expected = model.Entries.Where(e => e.Peer == peer).Select(e => ToPrefix(e.Key, e.Cidr, maxBits).ToString()).Order();
            Assert.Equal(expected, table.GetPrefixes(peer).Select(p => p.ToString()).Order());
        }

        // Re-inserting after removals exercises splits next to spliced-out branch nodes.
        for (int i = 0; i < 1000; i++)
        {
            Peer peer = peers[rng.Next(peerCount)];
            UInt128 key = RandomKey(rng, maxBits);
            int cidr = RandomCidr(rng, maxBits);
            table.Insert(ToPrefix(key, cidr, maxBits), peer);
            model.Insert(key, cidr, peer);
        }
        Assert.Equal(model.Entries.Count, table.Count);
        AssertSameAsModel(table, model, rng, maxBits, lookups);
    }

    // ---- Concurrency: lock-free readers against a churning writer. ----

    [Fact]
    public void ConcurrentReaders_AlwaysResolveStableEntries_WhileAWriterChurns()
    {
        var table = new AllowedIps<Peer>();
        var rng = new Random(42);

        // Stable host routes (nothing can be more specific) scattered where the writer churns,
        // plus one stable /12 that the writer only ever covers with shorter prefixes.
        var stable = new List<(byte[] Address, IpPrefix Prefix, Peer Peer)>();
        var stableSet = new HashSet<IpPrefix>();
        while (stable.Count < 32)
        {
            byte[] v4 = [10, 0, (byte)rng.Next(256), (byte)rng.Next(256)];
            var p = new IpPrefix(new IPAddress(v4), 32);
            if (stableSet.Add(p)) stable.Add((v4, p, new Peer($"s4-{stable.Count}")));
        }
        while (stable.Count < 64)
        {
            byte[] v6 = new byte[16];
            rng.NextBytes(v6.AsSpan(8));
            v6[0] = 0xFD;
            var p = new IpPrefix(new IPAddress(v6), 128);
            if (stableSet.Add(p)) stable.Add((v6, p, new Peer($"s6-{stable.Count}")));
        }
        var wide = P("172.16.0.0/12");
        stableSet.Add(wide);
        stable.Add(([172, 20, 1, 2], wide, new Peer("wide")));
        foreach (var s in stable) table.Insert(s.Prefix, s.Peer);

        IpPrefix RandomChurnPrefix(Random r)
        {
            while (true)
            {
                IpPrefix p = r.Next(4) switch
                {
                    0 => new IpPrefix(new IPAddress(new byte[] { 10, 0, (byte)r.Next(256), (byte)r.Next(256) }), r.Next(16, 33)),
                    1 => new IpPrefix(new IPAddress(new byte[] { (byte)r.Next(256), (byte)r.Next(256), 0, 0 }), r.Next(0, 13)),
                    2 => new IpPrefix(new IPAddress(stable[32 + r.Next(32)].Address.AsSpan(0, 15).ToArray().Append((byte)r.Next(256)).ToArray()), r.Next(64, 129)),
                    _ => new IpPrefix(new IPAddress(new byte[] { 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }), r.Next(0, 64)),
                };
                if (!stableSet.Contains(p.Network)) return p;
            }
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        long lookups = 0, failures = 0, writes = 0;
        string? firstFailure = null;
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();

        var readers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            try
            {
                long n = 0;
                while (!cts.IsCancellationRequested)
                {
                    foreach (var s in stable)
                    {
                        if (!ReferenceEquals(table.Lookup(s.Address), s.Peer) && Interlocked.Increment(ref failures) == 1)
                            firstFailure = $"{new IPAddress(s.Address)} did not resolve to {s.Peer.Name}";
                        n++;
                    }
                }
                Interlocked.Add(ref lookups, n);
            }
            catch (Exception ex) { errors.Enqueue(ex); }
        })).ToList();

        var churn = new List<(IpPrefix Prefix, Peer Peer)>();
        var writer = new Thread(() =>
        {
            try
            {
                var r = new Random(7);
                var churnPeers = Enumerable.Range(0, 16).Select(i => new Peer($"c{i}")).ToArray();
                while (!cts.IsCancellationRequested)
                {
                    int op = r.Next(10);
                    if (op < 6 || churn.Count == 0)
                    {
                        var p = RandomChurnPrefix(r);
                        var peer = churnPeers[r.Next(churnPeers.Length)];
                        table.Insert(p, peer);
                        churn.RemoveAll(c => c.Prefix == p.Network);
                        churn.Add((p.Network, peer));
                    }
                    else if (op < 9)
                    {
                        int i = r.Next(churn.Count);
                        if (!table.Remove(churn[i].Prefix, churn[i].Peer)) throw new InvalidOperationException($"remove of {churn[i].Prefix} failed");
                        churn.RemoveAt(i);
                    }
                    else
                    {
                        var peer = churnPeers[r.Next(churnPeers.Length)];
                        table.RemoveAll(peer);
                        churn.RemoveAll(c => c.Peer == peer);
                    }
                    writes++;
                }
            }
            catch (Exception ex) { errors.Enqueue(ex); }
        });

        readers.ForEach(t => t.Start());
        writer.Start();
        var deadline = TimeSpan.FromSeconds(30);
        Assert.True(writer.Join(deadline), "writer did not stop");
        foreach (var t in readers) Assert.True(t.Join(deadline), "reader did not stop");

        Assert.Empty(errors);
        Assert.True(failures == 0, $"{failures} failed lookups; first: {firstFailure}");
        Assert.True(lookups > 1000, $"only {lookups} lookups ran");
        Assert.True(writes > 100, $"only {writes} writes ran");
        output.WriteLine($"{lookups:N0} lookups against {writes:N0} writes");

        // The table ends in exactly the state the writer believes in.
        Assert.Equal(stable.Count + churn.Count, table.Count);
        foreach (var s in stable) Assert.Same(s.Peer, table.Lookup(s.Address));
        foreach (var c in churn) Assert.Contains(c.Prefix, table.GetPrefixes(c.Peer));
    }
}
