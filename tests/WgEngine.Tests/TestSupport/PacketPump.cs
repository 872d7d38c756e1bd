using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;

namespace WgEngine.Tests.TestSupport;

/// <summary>Counts what a device hands to egress (allocation tests: nothing kept).</summary>
internal sealed class CountingEgress : IEgress
{
    public long Count;
    public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet) => Interlocked.Increment(ref Count);
}

internal static class PacketPump
{
    /// <summary>Sends <paramref name="count"/> copies of <paramref name="packet"/> with at most 256 in flight, then waits for 95 %
    /// to reach <paramref name="sink"/>; returns how many did. Bounded in count and time.</summary>
    public static long Run(WgDevice sender, byte[] packet, CountingEgress sink, int count)
    {
        long start = Interlocked.Read(ref sink.Count);
        var deadline = Environment.TickCount64 + 30_000;
        for (int i = 0; i < count; i++)
        {
            sender.SendPacket(packet);
            while (i - (Interlocked.Read(ref sink.Count) - start) > 256 && Environment.TickCount64 < deadline) Thread.SpinWait(50);
        }
        TestNet.WaitFor(() => Interlocked.Read(ref sink.Count) - start >= count * 0.95, "packets to arrive", 10_000);
        return Interlocked.Read(ref sink.Count) - start;
    }

    /// <summary>
    /// Bytes allocated per packet on the devices' own packet threads (receive, crypto, handshake; not the test
    /// runner's), the best of three rounds of <paramref name="count"/> packets, each round with 95 % delivered.
    /// Something that allocates per packet shows in every round.
    /// </summary>
    public static double BestBytesPerPacket(IReadOnlyList<WgDevice> devices, WgDevice sender, byte[] packet, CountingEgress sink, int count)
    {
        double best = double.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = devices.Sum(d => d.PacketThreadAllocatedBytes);
            long delivered = Run(sender, packet, sink, count);
            long allocated = devices.Sum(d => d.PacketThreadAllocatedBytes) - before;
            Assert.True(delivered >= count * 0.95, $"only {delivered} of {count} packets arrived");
            best = Math.Min(best, allocated / (double)count);
        }
        return best;
    }
}
