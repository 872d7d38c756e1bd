using System.Buffers.Binary;
using System.Net;
using BenchmarkDotNet.Attributes;
using WgEngine.Egress;
using WgEngine.Net;
using WgEngine.Policy;

namespace WgEngine.Bench;

/// <summary>
/// Per-packet cost of the traffic policy (docs/policy.md): the ACL decision in the device with 0 rules
/// (no policy configured: the one check every packet pays), 10 and 1,000 rules (the sender's list, the
/// matching rule last, so every rule is tried, and the allowed flow recorded); the egress rule lookup of the
/// userspace egress with 0, 10 and 1,000 operator rules over the built-in table; and one token bucket take.
/// Each benchmark handles 256 packets (OperationsPerInvoke), so results are per packet.
/// </summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private const int Batch = 256;
    private TrafficPolicy _policy = null!;
    private PeerAcl? _acl;
    private EgressPolicy _egress = null!;
    private TokenBucket _bucket = null!;
    private byte[][] _packets = null!;
    private byte[][] _destinations = null!;

    [Params(0, 10, 1_000)]
    public int Rules { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _policy = new TrafficPolicy();
        if (Rules > 0)
        {
            var rules = new List<AclRule>();
            for (int i = 0; i < Rules - 1; i++) rules.AddRange(AclRule.Parse($"deny 10.{i / 250}.{i % 250}.0/24 tcp 22"));
            rules.AddRange(AclRule.Parse("allow 198.51.100.0/24 tcp"));
            _acl = _policy.Compile(rules, []);
            _policy.Replaced(null, _acl);
        }
        var operatorRules = Enumerable.Range(0, Rules).Select(i => IpPrefix.Parse($"172.{16 + i / 250 % 16}.{i % 250}.0/24")).ToArray();
        _egress = new EgressPolicy(new EgressRules(operatorRules, []), () => [IPAddress.Parse("192.0.2.10")]);
        _bucket = new TokenBucket(new RateLimit(RateLimit.MaxBitsPerSecond), TimeProvider.System);
        var rng = new Random(1);
        _packets = new byte[Batch][];
        _destinations = new byte[Batch][];
        for (int i = 0; i < Batch; i++)
        {
            var p = new byte[60];
            p[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), 60);
            p[8] = 64; p[9] = 6;
            new byte[] { 10, 8, 0, 2 }.CopyTo(p, 12);
            new byte[] { 198, 51, 100, (byte)rng.Next(256) }.CopyTo(p, 16);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(20), (ushort)(40000 + i));
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(22), 443);
            _packets[i] = p;
            _destinations[i] = [(byte)(1 + rng.Next(200)), (byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)];
        }
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int AclDecision()
    {
        int allowed = 0;
        foreach (var p in _packets)
            if (_policy.Permits(_acl, p, toPeer: false)) allowed++;
        return allowed;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int EgressRuleLookup()
    {
        int allowed = 0;
        foreach (var d in _destinations)
            if (_egress.IsAllowed(d)) allowed++;
        return allowed;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int RateLimiterTake()
    {
        int passed = 0;
        for (int i = 0; i < Batch; i++)
            if (_bucket.TryTake(1420)) passed++;
        return passed;
    }

    [GlobalCleanup]
    public void Cleanup() => _egress.Dispose();
}
