using System.Runtime.InteropServices;
using System.Text;

namespace WgEngine.Config;

/// <summary>
/// Replaces a file so that a reader (or a restart after a crash or power loss) sees either the old or
/// the new content, never a mix: write a temp file in the same directory (mode 0600), fsync it, rename
/// it over the target, fsync the directory. On failure the temp file is removed and the target untouched.
/// </summary>
public static class AtomicFile
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Test seam: runs after the temp file is written and before the rename.</summary>
    internal static Action<string>? BeforeRename { get; set; }

    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(text);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
        var temp = Path.Combine(dir, $"{TempPrefix(full)}{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var bytes = Utf8NoBom.GetBytes(text);
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var fs = new FileStream(temp, options))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            BeforeRename?.Invoke(temp);
            File.Move(temp, full, overwrite: true);   // rename(2): atomic on the same file system
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        SyncDirectory(dir);
    }

    /// <summary>
    /// Deletes the temp files that writers of <paramref name="path"/> left behind when they were killed
    /// between creating and renaming them (kill -9, power loss): ".NAME.PID.GUID.tmp" whose PID is no
    /// running process. A live writer's file (its process exists, this one included) is left alone; a
    /// reused PID only means a stale file survives until the next call. Returns how many were removed.
    /// </summary>
    public static int RemoveStaleTempFiles(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir)) return 0;
        var prefix = TempPrefix(full);
        int removed = 0;
        foreach (var file in Directory.EnumerateFiles(dir, prefix + "*.tmp"))
        {
            var rest = Path.GetFileName(file).AsSpan(prefix.Length);
            int dot = rest.IndexOf('.');
            if (dot <= 0 || !int.TryParse(rest[..dot], out int pid) || rest[(dot + 1)..].Length != 32 + 4) continue;
            if (IsRunning(pid)) continue;
            try { File.Delete(file); removed++; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }   // another cleaner won, or not ours to delete
        }
        return removed;
    }

    /// <summary>
    /// Whether <see cref="WriteAllText"/> may replace (or create) <paramref name="path"/>: its directory is
    /// writable and the file, when it exists, is not read-only (access(2) W_OK, which also sees a read-only
    /// mount such as a Kubernetes Secret volume).
    /// </summary>
    public static bool CanReplace(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (dir is null) return false;
        if (OperatingSystem.IsWindows())
            return !File.Exists(full) || !new FileInfo(full).IsReadOnly;
        if (Native.access(dir, Native.W_OK | Native.X_OK) != 0) return false;
        return !File.Exists(full) || Native.access(full, Native.W_OK) == 0;
    }

    private static string TempPrefix(string fullPath) => $".{Path.GetFileName(fullPath)}.";

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }          // no such process
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Makes the rename itself durable (the directory entry), as POSIX requires an fsync of the directory.</summary>
    private static void SyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Native.open(dir, Native.O_RDONLY | Native.O_CLOEXEC);
        if (fd < 0)
            throw new IOException($"Cannot open directory '{dir}' to flush it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Native.fsync(fd) != 0)
                throw new IOException($"fsync of directory '{dir}' failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            _ = Native.close(fd);
        }
    }

    private static class Native
    {
        // Linux values (02000000 octal for O_CLOEXEC on x86-64 and arm64); elsewhere only O_RDONLY is used.
        // A directory opens read-only without O_DIRECTORY, whose value differs between architectures.
        public const int O_RDONLY = 0;
        public static readonly int O_CLOEXEC = OperatingSystem.IsLinux() ? 0x80000 : 0;

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        public const int W_OK = 2, X_OK = 1;

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
        public static extern int access([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int mode);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
