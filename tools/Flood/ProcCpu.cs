using System.Globalization;

namespace Flood;

/// <summary>CPU time (utime + stime) from Linux /proc, in seconds (USER_HZ = 100 ticks per second).</summary>
internal static class ProcCpu
{
    /// <summary>A whole process: all its threads, live and exited (/proc/PID/stat).</summary>
    public static double Process(int pid) => Ticks(File.ReadAllText($"/proc/{pid}/stat")) / 100.0;

    /// <summary>The threads of this process whose name (comm) starts with <paramref name="prefix"/>.</summary>
    public static double OwnThreads(string prefix)
    {
        long total = 0;
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                if (!File.ReadAllText(Path.Combine(task, "comm")).StartsWith(prefix, StringComparison.Ordinal)) continue;
                total += Ticks(File.ReadAllText(Path.Combine(task, "stat")));
            }
            catch (IOException) { } // the thread ended meanwhile
        }
        return total / 100.0;
    }

    private static long Ticks(string stat)
    {
        // After "pid (comm) " come state (field 3) ... utime and stime (fields 14 and 15).
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }
}
