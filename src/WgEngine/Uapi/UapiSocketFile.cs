using System.Net.Sockets;
using System.Runtime.InteropServices;
using WgEngine.Gateway;

namespace WgEngine.Uapi;

/// <summary>Where UAPI sockets live and how an existing socket file is judged (live or stale).</summary>
public static class UapiSocketFile
{
    /// <summary>The folder `wg` and wireguard-go use (wireguard-go ipc/uapi_unix.go).</summary>
    public const string SystemDirectory = "/var/run/wireguard";

    /// <summary>
    /// The default socket for a server name: /var/run/wireguard/NAME.sock when that folder is writable
    /// (created 0755 when missing and we are root), else $XDG_RUNTIME_DIR/wireguard/NAME.sock, else a
    /// per-user temp folder.
    /// </summary>
    public static string DefaultPath(string name)
    {
        foreach (var dir in Candidates())
            if (EnsureWritable(dir.Path, dir.Mode)) return Path.Combine(dir.Path, name + ".sock");
        throw new WgException(WgErrorKind.ResourceUnavailable, "UapiDirectoryUnavailable",
            "No writable folder for the UAPI socket; give -UapiPath explicitly.");
    }

    private static IEnumerable<(string Path, UnixFileMode Mode)> Candidates()
    {
        const UnixFileMode Rwx = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        yield return (SystemDirectory, Rwx | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var xdg = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        if (!string.IsNullOrEmpty(xdg) && Directory.Exists(xdg)) yield return (Path.Combine(xdg, "wireguard"), Rwx);
        yield return (Path.Combine(Path.GetTempPath(), $"wireguard-{geteuid()}"), Rwx);
    }

    private static bool EnsureWritable(string dir, UnixFileMode mode)
    {
        try
        {
            if (!Directory.Exists(dir))
            {
                // Only root may create the system folder; anyone may create the per-user ones.
                if (dir == SystemDirectory && geteuid() != 0) return false;
                if (OperatingSystem.IsWindows()) Directory.CreateDirectory(dir); else Directory.CreateDirectory(dir, mode);
            }
            return access(dir, W_OK | X_OK) == 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>True when something accepts connections on <paramref name="path"/>.</summary>
    public static bool IsLive(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Refuses a path a live listener holds; deletes a stale socket file left by a crash.</summary>
    public static void RemoveIfStale(string path)
    {
        if (!File.Exists(path)) return;
        if (IsLive(path))
            throw new WgException(WgErrorKind.ResourceUnavailable, "UapiSocketInUse",
                $"UAPI socket '{path}' is in use by a running device; stop it or pick another -UapiPath.");
        File.Delete(path);
    }

    private const int W_OK = 2, X_OK = 1;

    [DllImport("libc", SetLastError = true)]
    private static extern int access(string path, int mode);

    [DllImport("libc")]
    private static extern uint geteuid();
}
