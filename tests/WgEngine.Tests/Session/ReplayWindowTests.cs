using WgEngine.Session;

namespace WgEngine.Tests.Session;

/// <summary>
/// The cases of the Linux kernel's replay-counter self-test (drivers/net/wireguard/selftest/counter.c),
/// re-expressed here: the same counter sequences and expected verdicts, plus a few API checks.
/// </summary>
public class ReplayWindowTests
{
    private const ulong Window = ReplayWindow.WindowSize;   // kernel COUNTER_WINDOW_SIZE (8128)
    private const ulong Lim = Window + 1;                   // kernel T_LIM
    private const ulong Reject = ReplayWindow.RejectAfterMessages;

    private ReplayWindow _window;   // a field, as real owners hold it
    private int _step;

    private void T(ulong counter, bool expected)
    {
        _step++;
        bool actual = _window.TryAccept(counter);
        Assert.True(actual == expected, $"step {_step}: TryAccept({counter}) returned {actual}, expected {expected}");
    }

    [Fact]
    public void Constants_MatchTheKernel()
    {
        Assert.Equal(8128, ReplayWindow.WindowSize);
        Assert.Equal(ulong.MaxValue - 8192, Reject);   // 2^64 - 2^13 - 1
        Assert.Equal(0xFFFF_FFFF_FFFF_DFFFUL, Reject);
    }

    [Fact]
    public void KernelSequence_Steps1To34()
    {
        T(0, true);                     //  1
        T(1, true);                     //  2
        T(1, false);                    //  3
        T(9, true);                     //  4
        T(8, true);                     //  5
        T(7, true);                     //  6
        T(7, false);                    //  7
        T(Lim, true);                   //  8
        T(Lim - 1, true);               //  9
        T(Lim - 1, false);              // 10
        T(Lim - 2, true);               // 11
        T(2, true);                     // 12
        T(2, false);                    // 13
        T(Lim + 16, true);              // 14
        T(3, false);                    // 15
        T(Lim + 16, false);             // 16
        T(Lim * 4, true);               // 17
        T(Lim * 4 - (Lim - 1), true);   // 18
        T(10, false);                   // 19
        T(Lim * 4 - Lim, false);        // 20
        T(Lim * 4 - (Lim + 1), false);  // 21
        T(Lim * 4 - (Lim - 2), true);   // 22
        T(Lim * 4 + 1 - Lim, false);    // 23
        T(0, false);                    // 24
        T(Reject, false);               // 25
        T(Reject - 1, true);            // 26
        T(Reject, false);               // 27
        T(Reject - 1, false);           // 28
        T(Reject - 2, true);            // 29
        T(Reject + 1, false);           // 30
        T(Reject + 2, false);           // 31
        T(Reject - 2, false);           // 32
        T(Reject - 3, true);            // 33
        T(0, false);                    // 34
    }

    [Fact]
    public void Bulk_ForwardFullWindow_ThenZeroStillFits()
    {
        for (ulong i = 1; i <= Window; i++) T(i, true);
        T(0, true);
        T(0, false);
    }

    [Fact]
    public void Bulk_ForwardFromTwo_OneFitsZeroTooOld()
    {
        for (ulong i = 2; i <= Window + 1; i++) T(i, true);
        T(1, true);
        T(0, false);
    }

    [Fact]
    public void Bulk_ReverseFromWindowToZero()
    {
        for (ulong i = Window + 1; i-- > 0;) T(i, true);
    }

    [Fact]
    public void Bulk_ReverseFromWindowPlusOneToOne_ThenZeroTooOld()
    {
        for (ulong i = Window + 2; i-- > 1;) T(i, true);
        T(0, false);
    }

    [Fact]
    public void Bulk_ReverseFromWindowToOne_ThenNewTop_ThenZeroTooOld()
    {
        for (ulong i = Window + 1; i-- > 1;) T(i, true);
        T(Window + 1, true);
        T(0, false);
    }

    [Fact]
    public void Bulk_ReverseFromWindowToOne_ThenZero_ThenNewTop()
    {
        for (ulong i = Window + 1; i-- > 1;) T(i, true);
        T(0, true);
        T(Window + 1, true);
    }

    [Fact]
    public void Reset_ForgetsSeenCountersAndTheTop()
    {
        T(Lim * 4, true);
        T(5, false);            // too old
        _window.Reset();
        T(5, true);
        T(5, false);
        T(Lim * 4, true);       // seen before the reset, fresh after it
    }

    [Fact]
    public void LargeJump_ClearsStaleBitsInReusedWords()
    {
        // Counters 0..63 and their ring slots; a jump of exactly one ring length reuses those words,
        // which must read as unseen for the new counters.
        for (ulong i = 0; i < 64; i++) T(i, true);
        const ulong ring = 8192;
        for (ulong i = ring; i < ring + 64; i++) T(i, true);
        for (ulong i = ring; i < ring + 64; i++) T(i, false);
    }
}
