using System.Collections.Concurrent;
using System.Diagnostics;
using WgEngine.Egress;

namespace WgEngine.Tests.Tun;

/// <summary>What the tests on a real TUN share: a sink that keeps what the reader hands it, and a poll.</summary>
internal static class TunTestSupport
{
    /// <summary>Keeps every packet the TUN reader forwards; Accept = false makes it refuse them.</summary>
    public sealed class RecordingSink : IPacketSink
    {
        public readonly ConcurrentQueue<byte[]> Packets = new();
        public bool Accept = true;
        public bool SendPacket(ReadOnlySpan<byte> ipPacket) { Packets.Enqueue(ipPacket.ToArray()); return Accept; }
    }

    /// <summary>Polls every 20 ms until the condition holds; false after the timeout.</summary>
    public static bool WaitFor(Func<bool> condition, int timeoutMs = 10_000)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.ElapsedMilliseconds > timeoutMs) return false;
            Thread.Sleep(20);
        }
        return true;
    }
}
