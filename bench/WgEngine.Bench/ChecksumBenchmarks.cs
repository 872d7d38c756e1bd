using BenchmarkDotNet.Attributes;
using WgEngine.PacketPlane;

namespace WgEngine.Bench;

/// <summary>
/// The Internet checksum over a full-size segment (1420 B: what the TUN segmenter checksums per segment and the
/// coalescer verifies per packet) and a 64 KiB super-packet: the vector sum against the scalar add-with-carry loop
/// it replaced (the baseline, still used below 64 bytes).
/// </summary>
[MemoryDiagnoser]
public class ChecksumBenchmarks
{
    private byte[] _data = [];

    [Params(1420, 65_536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[Size];
        new Random(1).NextBytes(_data);
    }

    [Benchmark(Baseline = true)]
    public ushort Scalar() => Checksum.SumScalarForTests(_data);

    [Benchmark]
    public ushort Vector() => Checksum.Sum(_data);
}
