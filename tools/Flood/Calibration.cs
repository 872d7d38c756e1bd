using System.Runtime.InteropServices;
using WgEngine.Crypto;

namespace Flood;

/// <summary>
/// The machine's speed at the moment of a run, in the unit issue 7 states its target in: the CPU time
/// of one variable-base X25519 (libsodium) on this thread. The host is shared, so a handshake's CPU
/// time moves with the load; its cost in X25519 operations moves much less.
/// </summary>
internal static partial class Calibration
{
    public static double X25519Microseconds(int operations = 2000)
    {
        Span<byte> priv = stackalloc byte[32], pub = stackalloc byte[32], shared = stackalloc byte[32];
        X25519.GeneratePrivateKey(priv);
        X25519.PublicKey(priv, pub);
        for (int i = 0; i < 50; i++) X25519.SharedSecret(priv, pub, shared); // warm up
        double t0 = ThreadCpuSeconds();
        for (int i = 0; i < operations; i++) X25519.SharedSecret(priv, pub, shared);
        return (ThreadCpuSeconds() - t0) * 1e6 / operations;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Seconds, Nanoseconds; }

    private const int ClockThreadCpuTime = 3; // CLOCK_THREAD_CPUTIME_ID (Linux)

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out Timespec time);

    private static double ThreadCpuSeconds()
    {
        if (ClockGetTime(ClockThreadCpuTime, out var t) != 0) throw new InvalidOperationException("clock_gettime failed");
        return t.Seconds + t.Nanoseconds * 1e-9;
    }
}
