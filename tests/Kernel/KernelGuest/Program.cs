using System.Diagnostics;
using System.Reflection;

namespace WgEngine.KernelGuest;

/// <summary>A small in-process test runner: every public static void method of <see cref="KernelTests"/>
/// marked [GuestTest] runs once; the results file gets "PASS name", "FAIL name: why" lines, figures
/// ("FIGURE ...") and a closing "N passed, N failed" that build.ps1 adds to the suite's count.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        string resultsPath = args.Length > 0 ? args[0] : "results.txt";
        var lines = new List<string>();
        int passed = 0, failed = 0;
        var tests = typeof(KernelTests).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.GetCustomAttribute<GuestTestAttribute>() is not null).OrderBy(m => m.MetadataToken).ToList();
        string? only = Environment.GetEnvironmentVariable("KERNEL_TEST_FILTER");
        foreach (var t in tests)
        {
            if (!string.IsNullOrEmpty(only) && !t.Name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
            var sw = Stopwatch.StartNew();
            try
            {
                t.Invoke(null, null);
                passed++;
                lines.Add($"PASS {t.Name} ({sw.Elapsed.TotalSeconds:F1} s)");
            }
            catch (TargetInvocationException e)
            {
                failed++;
                lines.Add($"FAIL {t.Name}: {e.InnerException?.GetType().Name}: {e.InnerException?.Message?.ReplaceLineEndings(" ")} {e.InnerException?.StackTrace?.ReplaceLineEndings(" | ")}");
            }
            Console.WriteLine(lines[^1]);
            File.WriteAllLines(resultsPath, [.. lines, .. KernelTests.Figures]);
        }
        lines.AddRange(KernelTests.Figures);
        lines.Add($"{passed} passed, {failed} failed");
        File.WriteAllLines(resultsPath, lines);
        Console.WriteLine(lines[^1]);
        return failed == 0 ? 0 : 1;
    }
}

[AttributeUsage(AttributeTargets.Method)]
internal sealed class GuestTestAttribute : Attribute;

internal sealed class CheckFailedException(string message) : Exception(message);

internal static class Check
{
    public static void True(bool condition, string what)
    {
        if (!condition) throw new CheckFailedException(what);
    }

    public static void Equal<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual)) throw new CheckFailedException($"{what}: expected {expected}, got {actual}");
    }

    public static TException Throws<TException>(Action action, string what) where TException : Exception
    {
        try { action(); }
        catch (TException e) { return e; }
        throw new CheckFailedException($"{what}: no {typeof(TException).Name} thrown");
    }

    /// <summary>Polls <paramref name="condition"/> until true or <paramref name="timeout"/> passed (a wait for a condition, not a sleep).</summary>
    public static void Eventually(Func<bool> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout) throw new CheckFailedException($"{what}: not within {timeout.TotalSeconds} s");
            Thread.Sleep(100);
        }
    }
}
