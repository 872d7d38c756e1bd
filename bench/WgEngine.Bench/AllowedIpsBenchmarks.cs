using System.Net;
using BenchmarkDotNet.Attributes;
using WgEngine.Device;
using WgEngine.Net;

namespace WgEngine.Bench;

/// <summary>
/// Per-packet cost of the cryptokey-routing lookup in a gateway-sized table: PeerCount peers, each
/// with one IPv4 /32 and one IPv6 /128 from the pool, plus a few shorter routes and default routes.
/// Each benchmark looks up 256 addresses (OperationsPerInvoke) so the result is per lookup.
/// </summary>
[MemoryDiagnoser]
public class AllowedIpsBenchmarks
{
    private const int Batch = 256;

    private AllowedIps<object> _table = null!;
    private byte[][] _v4Hits = null!, _v6Hits = null!, _v4Misses = null!;

    [Params(1_000, 100_000)]
    public int PeerCount { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _table = new AllowedIps<object>();
        for (int i = 0; i < PeerCount; i++)
        {
            var peer = new object();
            _table.Insert(new IpPrefix(new IPAddress(V4(i)), 32), peer);
            _table.Insert(new IpPrefix(new IPAddress(V6(i)), 128), peer);
        }
        _table.Insert(IpPrefix.Parse("10.0.0.0/8"), new object());
        _table.Insert(IpPrefix.Parse("192.168.0.0/16"), new object());
        _table.Insert(IpPrefix.Parse("::/0"), new object());

        var rng = new Random(1);
        _v4Hits = new byte[Batch][];
        _v6Hits = new byte[Batch][];
        _v4Misses = new byte[Batch][];
        for (int i = 0; i < Batch; i++)
        {
            int peer = rng.Next(PeerCount);
            _v4Hits[i] = V4(peer);
            _v6Hits[i] = V6(peer);
            _v4Misses[i] = [(byte)(11 + rng.Next(100)), (byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)];
        }
    }

    // 10.0.0.1 upward and fd00::1 upward: addresses handed out from a gateway pool.
    private static byte[] V4(int i)
    {
        uint ip = 0x0A000001u + (uint)i;
        return [(byte)(ip >> 24), (byte)(ip >> 16), (byte)(ip >> 8), (byte)ip];
    }

    private static byte[] V6(int i)
    {
        var b = new byte[16];
        b[0] = 0xFD;
        uint host = 1u + (uint)i;
        b[12] = (byte)(host >> 24); b[13] = (byte)(host >> 16); b[14] = (byte)(host >> 8); b[15] = (byte)host;
        return b;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupV4Hit() => Run(_v4Hits);

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupV6Hit() => Run(_v6Hits);

    [Benchmark(OperationsPerInvoke = Batch)]
    public int LookupV4Miss() => Run(_v4Misses);

    private int Run(byte[][] addresses)
    {
        int found = 0;
        foreach (byte[] a in addresses)
            if (_table.Lookup(a) is not null) found++;
        return found;
    }
}
