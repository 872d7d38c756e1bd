using WgEngine.Session;

namespace WgEngine.Fuzz;

/// <summary>
/// Differential target for <see cref="ReplayWindow"/>, which judges the counters of authenticated
/// transport packets. The input is a sequence of 3-byte operations that pick a counter near the
/// newest accepted one (ahead or behind), a small absolute one, or one near Reject-After-Messages,
/// so the sequences stay where the window's arithmetic is. Each verdict must match a plain model of
/// the rule (whitepaper §5.4.6, kernel counter_validate): accept a counter below the limit that is not
/// more than <see cref="ReplayWindow.WindowSize"/> behind the newest accepted and was not accepted before.
/// </summary>
internal static class ReplayWindowTarget
{
    public static void Run(ReadOnlySpan<byte> input)
    {
        var window = new ReplayWindow();
        var seen = new HashSet<ulong>();
        ulong newest = 0;
        bool any = false;
        for (int i = 0; i + 3 <= input.Length; i += 3)
        {
            ulong small = (ulong)(input[i + 1] | input[i + 2] << 8);
            ulong counter = (input[i] & 3) switch
            {
                0 => newest + small,
                1 => newest >= small ? newest - small : small,
                2 => small,
                _ => ReplayWindow.RejectAfterMessages - 1 - small + (ulong)(input[i] >> 2 & 3),
            };
            if ((input[i] & 0x80) != 0) counter += (ulong)ReplayWindow.WindowSize; // jump to the window's edge

            bool expected = counter < ReplayWindow.RejectAfterMessages
                && !(any && counter + (ulong)ReplayWindow.WindowSize < newest)
                && !seen.Contains(counter);
            bool actual = window.TryAccept(counter);
            if (actual != expected)
                throw new InvalidOperationException(
                    $"ReplayWindow {(actual ? "accepted" : "rejected")} counter {counter} (newest accepted {(any ? newest : "none")}, op {i / 3}).");
            if (actual)
            {
                seen.Add(counter);
                if (!any || counter > newest) newest = counter;
                any = true;
            }
        }
    }
}
