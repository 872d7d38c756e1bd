using System.Diagnostics;
using System.Runtime.InteropServices;

namespace WgEngine.Tests.Tun;

/// <summary>
/// A network namespace this test run creates (ip netns add) and deletes on Dispose. Code runs inside it
/// on a dedicated thread that joins it with setns(2): a thread's namespace is its own, so the test
/// process and other tests stay in the root namespace, and whatever the code creates (a TUN, its control
/// sockets) lives in the namespace and vanishes with it.
/// </summary>
internal sealed class TestNamespace : IDisposable
{
    private const int CLONE_NEWNET = 0x40000000;

    [DllImport("libc", SetLastError = true)] private static extern int setns(int fd, int nstype);
    [DllImport("libc", SetLastError = true)] private static extern int open(string path, int flags);
    [DllImport("libc", SetLastError = true)] private static extern int close(int fd);
    [DllImport("libc")] private static extern uint geteuid();
    [DllImport("libc", SetLastError = true)] private static extern int capget(ref CapHeader header, [Out] CapData[] data);
    [DllImport("libc", SetLastError = true)] private static extern int capset(ref CapHeader header, CapData[] data);

    [StructLayout(LayoutKind.Sequential)] private struct CapHeader { public uint Version; public int Pid; }
    [StructLayout(LayoutKind.Sequential)] private struct CapData { public uint Effective, Permitted, Inheritable; }

    public string Name { get; }

    public TestNamespace()
    {
        Name = $"wgt{Environment.ProcessId % 100000:x}{Random.Shared.Next(0x10000):x4}";
        Run("ip", "netns", "add", Name);
        Run("ip", "-n", Name, "link", "set", "lo", "up");
    }

    /// <summary>Why real-TUN tests cannot run here (not root, no /dev/net/tun, no ip), or null.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "not Linux";
        if (geteuid() != 0) return "not root (namespaces need it)";
        if (!File.Exists("/dev/net/tun")) return "no /dev/net/tun";
        if (!File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip")) return "no ip(8)";
        return null;
    }

    /// <summary>Runs <paramref name="action"/> on a new thread inside the namespace, optionally without
    /// CAP_NET_ADMIN in that thread's effective set; rethrows what it throws.</summary>
    public T Inside<T>(Func<T> action, bool dropNetAdmin = false)
    {
        T result = default!;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                int fd = open($"/var/run/netns/{Name}", 0x80000 /* O_RDONLY|O_CLOEXEC */);
                if (fd < 0) throw new InvalidOperationException($"open netns: errno {Marshal.GetLastPInvokeError()}");
                try { if (setns(fd, CLONE_NEWNET) != 0) throw new InvalidOperationException($"setns: errno {Marshal.GetLastPInvokeError()}"); }
                finally { _ = close(fd); }
                if (dropNetAdmin) DropNetAdmin();
                result = action();
            }
            catch (Exception e) { error = e; }
        });
        t.Start();
        t.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        return result;
    }

    /// <summary>Clears CAP_NET_ADMIN (12) from this thread's effective set (capabilities are per thread).</summary>
    private static void DropNetAdmin()
    {
        var h = new CapHeader { Version = 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, Pid = 0 };
        var d = new CapData[2];
        if (capget(ref h, d) != 0) throw new InvalidOperationException($"capget: errno {Marshal.GetLastPInvokeError()}");
        d[0].Effective &= ~(1u << 12);
        if (capset(ref h, d) != 0) throw new InvalidOperationException($"capset: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Runs a command inside the namespace (ip netns exec); returns exit code and stdout.</summary>
    public (int Code, string Output) Exec(params string[] args) => Run(["ip", "netns", "exec", Name, .. args], allowFailure: true);

    public static (int Code, string Output) Run(string[] args, bool allowFailure)
    {
        var psi = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args.AsSpan(1)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(30_000)) { p.Kill(true); throw new TimeoutException(string.Join(' ', args)); }
        if (p.ExitCode != 0 && !allowFailure)
            throw new InvalidOperationException($"'{string.Join(' ', args)}' exited {p.ExitCode}: {stderr.Result}");
        return (p.ExitCode, stdout);
    }

    private static void Run(params string[] args) => Run(args, allowFailure: false);

    public void Dispose() => Run(["ip", "netns", "delete", Name], allowFailure: true);
}

/// <summary>A fact that needs a test-created namespace and a real TUN: skipped (with the reason) where
/// that is impossible, except under CI=true, where it runs and fails instead of hiding.</summary>
public sealed class TunFactAttribute : FactAttribute
{
    public TunFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("CI") == "true") return;
        if (TestNamespace.Unavailable() is { } why) Skip = $"needs a real TUN in a test namespace: {why}";
    }
}
