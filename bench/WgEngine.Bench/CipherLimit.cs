using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using WgEngine.Crypto;

namespace WgEngine.Bench;

/// <summary>
/// The cipher limit of the data plane, for the end-to-end benchmarks: how long the transport AEAD the engine
/// uses (TransportAead, which picks EVP or libsodium by size) takes to seal and to open one packet of a size on
/// one core of this machine, and the CPU-seconds per GB that the cipher alone costs one tunnel end. A timed loop
/// rather than BenchmarkDotNet because the end-to-end scripts need one figure from the same run in seconds,
/// not a full statistical job; AeadBenchmarks is the precise comparison of the implementations.
/// </summary>
internal static class CipherLimit
{
    private static readonly TimeSpan Warmup = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Measure = TimeSpan.FromSeconds(1);

    /// <summary>Prints one JSON object: Size, Backend, SealNsPerPacket, OpenNsPerPacket, and the CPU-s per GB of
    /// plaintext for seal and open (what one end spends on the cipher per direction).</summary>
    public static int Run(int size)
    {
        if (size is < 1 or > 65535)
        {
            Console.Error.WriteLine($"--cipher-limit: a packet size from 1 to 65535 bytes, not {size}.");
            return 2;
        }
        var key = RandomNumberGenerator.GetBytes(32);
        var plain = RandomNumberGenerator.GetBytes(size);
        var sealedPacket = new byte[size + 16];
        var scratch = new byte[size + 16];
        TransportAead.Seal(key, 1, plain, sealedPacket);
        if (!TransportAead.Open(key, 1, sealedPacket, scratch) || !scratch.AsSpan(0, size).SequenceEqual(plain))
            throw new InvalidOperationException("The transport AEAD does not round-trip.");

        double sealNs = NsPerCall(counter => TransportAead.Seal(key, counter, plain, scratch));
        double openNs = NsPerCall(_ => { if (!TransportAead.Open(key, 1, sealedPacket, scratch)) throw new InvalidOperationException("open failed"); });
        double perGb = 1e9 / size; // packets per GB of plaintext
        var result = new
        {
            Size = size,
            Backend = size >= TransportAead.EvpSealThreshold ? TransportAead.LargePacketBackend : "libsodium",
            SealNsPerPacket = Math.Round(sealNs, 1),
            OpenNsPerPacket = Math.Round(openNs, 1),
            SealCpuSecondsPerGB = Math.Round(sealNs * perGb / 1e9, 3),
            OpenCpuSecondsPerGB = Math.Round(openNs * perGb / 1e9, 3),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>Calls <paramref name="op"/> in a loop for the warm-up, then for the measuring time, and returns the
    /// mean nanoseconds per call of the measured part (checked against the clock every 256 calls).</summary>
    private static double NsPerCall(Action<ulong> op)
    {
        Loop(op, Warmup);
        return Loop(op, Measure);
    }

    private static double Loop(Action<ulong> op, TimeSpan duration)
    {
        var sw = Stopwatch.StartNew();
        ulong calls = 0;
        while (sw.Elapsed < duration)
        {
            for (int i = 0; i < 256; i++) op(calls++);
        }
        return sw.Elapsed.TotalNanoseconds / calls;
    }
}
