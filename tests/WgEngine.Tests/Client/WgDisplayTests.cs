using WgPowerShell.Formatting;

namespace WgEngine.Tests.Client;

/// <summary>The texts of the default table views: handshake age, byte counts, short keys.</summary>
public class WgDisplayTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(0, "0 s ago")]
    [InlineData(42, "42 s ago")]
    [InlineData(59, "59 s ago")]
    [InlineData(60, "1 min ago")]
    [InlineData(5 * 60 + 59, "5 min ago")]
    [InlineData(3599, "59 min ago")]
    [InlineData(3600, "1 h ago")]
    [InlineData(3 * 3600 + 1800, "3 h ago")]
    [InlineData(86399, "23 h ago")]
    [InlineData(86400, "1 d ago")]
    [InlineData(2 * 86400 + 7 * 3600, "2 d ago")]
    [InlineData(-30, "0 s ago")]   // a clock a little ahead never shows a negative age
    public void Ago_picks_the_largest_whole_unit(int secondsAgo, string expected) =>
        Assert.Equal(expected, WgDisplay.Ago(Now.AddSeconds(-secondsAgo), Now));

    [Fact]
    public void Ago_of_no_handshake_is_never() => Assert.Equal("never", WgDisplay.Ago(null, Now));

    [Theory]
    [InlineData(0L, "0 B")]
    [InlineData(1023L, "1023 B")]
    [InlineData(1024L, "1.0 KiB")]
    [InlineData(340L * 1024, "340 KiB")]
    [InlineData(1258291L, "1.2 MiB")]              // 1.2 * 1024^2
    [InlineData(1048575L, "1.0 MiB")]              // 1023.999 KiB rounds up into the next unit
    [InlineData(10L * 1024 * 1024 * 1024, "10 GiB")]
    [InlineData(5L * 1024 * 1024 * 1024 * 1024, "5.0 TiB")]
    [InlineData(2048L * 1024 * 1024 * 1024 * 1024, "2048 TiB")]   // TiB is the largest unit
    [InlineData(-5L, "0 B")]
    public void Bytes_are_1024_based(long bytes, string expected) => Assert.Equal(expected, WgDisplay.Bytes(bytes));

    [Fact]
    public void Transfer_is_received_then_sent() =>
        Assert.Equal("1.2 MiB / 340 KiB", WgDisplay.Transfer(1258291, 340 * 1024));

    [Theory]
    [InlineData("e32UmsTaFExcWh+1Amn4ER+lx6ofJEwB8Lq3Uzi/zTY=", "e32UmsTa…")]
    [InlineData("short", "short")]
    [InlineData(null, "")]
    public void ShortKey_keeps_eight_characters(string? key, string expected) => Assert.Equal(expected, WgDisplay.ShortKey(key));
}
