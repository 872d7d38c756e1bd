using WgEngine.Crypto;
using static WgEngine.Tests.Crypto.CryptoTestUtil;

namespace WgEngine.Tests.Crypto;

public class Tai64NTests
{
    [Fact]
    public void LayoutIsBigEndianSecondsPlusLabelThenWhitenedNanoseconds()
    {
        // 2020-01-01T00:00:00Z is Unix 1577836800 = 0x5E0BE100; + 0x400000000000000a.
        // 500 000 000 ns = 0x1DCD6500; clearing the low 24 bits leaves 0x1D000000.
        var t = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero).AddMilliseconds(500);
        var ts = new byte[12];
        Tai64N.Write(t, ts);
        Assert.Equal("400000005e0be10a" + "1d000000", ToHex(ts));
    }

    [Fact]
    public void OffsetIsNormalisedToUtc()
    {
        var utc = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);
        var local = utc.ToOffset(TimeSpan.FromHours(-5));
        byte[] a = new byte[12], b = new byte[12];
        Tai64N.Write(utc, a);
        Tai64N.Write(local, b);
        Assert.Equal(a, b);
    }

    [Fact]
    public void WhiteningHidesSubSixteenMillisecondDifferences()
    {
        // Both instants fall in the same 2^24 ns window: 0 .. 16.777216 ms after the second.
        var s = new DateTimeOffset(2023, 3, 4, 5, 6, 7, TimeSpan.Zero);
        byte[] a = new byte[12], b = new byte[12];
        Tai64N.Write(s.AddTicks(1), a);
        Tai64N.Write(s.AddTicks(167_000), b); // 16.7 ms
        Assert.Equal(0, Tai64N.Compare(a, b));
        Assert.Equal(a, b);
    }

    [Fact]
    public void LaterTimesCompareGreater()
    {
        var t = new DateTimeOffset(2025, 12, 31, 23, 59, 58, TimeSpan.Zero);
        var prev = new byte[12];
        var next = new byte[12];
        Tai64N.Write(t, prev);
        // Steps of 17 ms always cross a 2^24 ns boundary, including across second rollovers.
        for (int i = 1; i <= 200; i++)
        {
            Tai64N.Write(t.AddMilliseconds(17 * i), next);
            Assert.True(Tai64N.Compare(next, prev) > 0, $"step {i}");
            Assert.True(Tai64N.Compare(prev, next) < 0, $"step {i}");
            next.CopyTo(prev, 0);
        }
    }

    [Fact]
    public void SecondsDominateNanoseconds()
    {
        var t = new DateTimeOffset(2022, 1, 1, 0, 0, 0, TimeSpan.Zero);
        byte[] late = new byte[12], early = new byte[12];
        Tai64N.Write(t.AddMilliseconds(999), early);
        Tai64N.Write(t.AddSeconds(1), late);
        Assert.True(Tai64N.Compare(late, early) > 0);
    }

    [Fact]
    public void TimesBefore1970FloorToTheSecond()
    {
        // 1969-12-31T23:59:59.5Z: seconds -1, nanoseconds 500 000 000.
        var t = new DateTimeOffset(1970, 1, 1, 0, 0, 0, TimeSpan.Zero).AddMilliseconds(-500);
        var ts = new byte[12];
        Tai64N.Write(t, ts);
        Assert.Equal("4000000000000009" + "1d000000", ToHex(ts));
    }

    [Fact]
    public void WrongSizesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => Tai64N.Write(DateTimeOffset.UnixEpoch, new byte[11]));
        Assert.Throws<ArgumentException>(() => Tai64N.Compare(new byte[12], new byte[13]));
    }
}
