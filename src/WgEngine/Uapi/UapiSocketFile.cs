using System.Net.Sockets;
using System.Runtime.InteropServices;
using WgEngine.Contracts;

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
    /// A folder that exists but that another user could tamper with (see <see cref="FolderProblem"/>) is
    /// passed over; when no candidate is left, the error says why (UapiDirectoryUnsafe).
    public static string DefaultPath(string name) => DefaultPath(name, Candidates());

    internal static string DefaultPath(string name, IEnumerable<(string Path, UnixFileMode Mode)> candidates)
    {
        var unsafeOnes = new List<string>();
        foreach (var dir in candidates)
        {
            if (!EnsureWritable(dir.Path, dir.Mode)) continue;
            if (FolderProblem(dir.Path) is { } problem) { unsafeOnes.Add(problem); continue; }
            return Path.Combine(dir.Path, name + ".sock");
        }
        if (unsafeOnes.Count > 0)
            throw new WgException(WgErrorKind.ResourceUnavailable, "UapiDirectoryUnsafe",
                $"No safe folder for the UAPI socket: {string.Join("; ", unsafeOnes)}. Remove it (another user could move or replace the socket there), or give -UapiPath explicitly.");
        throw new WgException(WgErrorKind.ResourceUnavailable, "UapiDirectoryUnavailable",
            "No writable folder for the UAPI socket; give -UapiPath explicitly.");
    }

    /// <summary>
    /// Why a socket folder is unsafe, or null when it is fine: it must be a real directory (not a symlink),
    /// owned by this user (or root), and writable by no one else (no group or other write bit), so that no
    /// other user can rename, delete or replace the socket in it. Owner checks use statx(2), Linux only.
    /// </summary>
    internal static string? FolderProblem(string dir)
    {
        if (OperatingSystem.IsWindows()) return null;
        const UnixFileMode OthersWrite = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
        var info = new DirectoryInfo(dir);
        if (info.LinkTarget is not null) return $"'{dir}' is a symbolic link";
        if ((info.UnixFileMode & OthersWrite) != 0)
            return $"'{dir}' is writable by other users (mode {Convert.ToString((int)info.UnixFileMode, 8).PadLeft(4, '0')})";
        if (OperatingSystem.IsLinux() && OwnerOf(dir) is { } owner && owner != geteuid() && owner != 0)
            return $"'{dir}' belongs to another user (uid {owner})";
        return null;
    }

    /// <summary>The owner's uid by statx(2) (its struct layout is the same on every Linux architecture), or null.</summary>
    private static unsafe uint? OwnerOf(string path)
    {
        const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
        const uint STATX_UID = 0x8;
        byte* buf = stackalloc byte[256];   // struct statx is 256 bytes; stx_uid is the u32 at offset 20
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_UID, buf) != 0) return null;
        if ((*(uint*)buf & STATX_UID) == 0) return null;   // stx_mask: the field was not filled in
        return *(uint*)(buf + 20);
    }

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern unsafe int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte* buffer);

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
