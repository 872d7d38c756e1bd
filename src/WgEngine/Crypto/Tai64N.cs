using System.Buffers.Binary;

namespace WgEngine.Crypto;

/// <summary>
/// TAI64N timestamps as WireGuard sends them in handshake initiations: 8 bytes big-endian
/// (0x400000000000000a + Unix seconds) then 4 bytes big-endian nanoseconds. As wireguard-go's
/// tai64n.go does, the low 24 bits of the nanoseconds are cleared (a multiple of 2^24 ns, about 16.8 ms)
/// so the timestamp does not leak a precise clock reading.
/// </summary>
internal static class Tai64N
{
    public const int Size = 12;
    private const ulong Base = 0x400000000000000aUL;   // TAI64 label for 1970 (+10 s), per cr.yp.to/libtai/tai64.html
    private const uint WhitenerMask = 0xffffff;         // wireguard-go tai64n/tai64n.go: nanos &^ 0xffffff
    private const long UnixEpochTicks = 621355968000000000L; // DateTime ticks at 1970-01-01T00:00:00Z

    public static void Write(DateTimeOffset time, Span<byte> destination12)
    {
        if (destination12.Length != Size) throw new ArgumentException("A TAI64N timestamp is 12 bytes.", nameof(destination12));
        long ticks = time.UtcTicks - UnixEpochTicks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rem);
        if (rem < 0) { seconds--; rem += TimeSpan.TicksPerSecond; } // floor, for times before 1970
        uint nanos = (uint)(rem * 100) & ~WhitenerMask;
        BinaryPrimitives.WriteUInt64BigEndian(destination12, Base + (ulong)seconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination12[8..], nanos);
    }

    /// <summary>Orders two timestamps: negative, zero or positive as a is older, equal or newer than b.</summary>
    public static int Compare(ReadOnlySpan<byte> a12, ReadOnlySpan<byte> b12)
    {
        if (a12.Length != Size || b12.Length != Size) throw new ArgumentException("A TAI64N timestamp is 12 bytes.");
        // Big-endian fields, so byte order is time order.
        return Math.Sign(a12.SequenceCompareTo(b12));
    }
}
