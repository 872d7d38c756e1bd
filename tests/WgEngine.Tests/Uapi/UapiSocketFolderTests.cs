using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Uapi;

namespace WgEngine.Tests.Uapi;

/// <summary>The default UAPI folder must be one no other user can tamper with (issue 11 item 8): a
/// fallback such as /tmp/wireguard-UID pre-created by someone else, or open to all, is refused.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class UapiSocketFolderTests : IDisposable
{
    private const UnixFileMode Rwx = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private readonly string _root = Directory.CreateTempSubdirectory("wguapidir-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Folder(string name, UnixFileMode mode)
    {
        var dir = Path.Combine(_root, name);
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, mode);   // explicitly: the umask would narrow CreateDirectory's mode
        return dir;
    }

    [Fact]
    public void An_own_folder_closed_to_others_is_used()
    {
        var dir = Folder("own", Rwx);
        Assert.Null(UapiSocketFile.FolderProblem(dir));
        Assert.Equal(Path.Combine(dir, "wg7.sock"), UapiSocketFile.DefaultPath("wg7", [(dir, Rwx)]));
    }

    [Fact]
    public void A_missing_folder_is_created_and_used()
    {
        var dir = Path.Combine(_root, "fresh");
        Assert.Equal(Path.Combine(dir, "wg7.sock"), UapiSocketFile.DefaultPath("wg7", [(dir, Rwx)]));
        Assert.Null(UapiSocketFile.FolderProblem(dir));
    }

    [Fact]
    public void A_folder_writable_by_everyone_is_refused_and_the_next_candidate_taken()
    {
        var open = Folder("open", (UnixFileMode)0b111_111_111);   // 0777, as another user could leave it
        Assert.Contains("writable by other users (mode 0777)", UapiSocketFile.FolderProblem(open));
        var e = Assert.Throws<WgException>(() => UapiSocketFile.DefaultPath("wg7", [(open, Rwx)]));
        Assert.Equal("UapiDirectoryUnsafe", e.ErrorId);
        Assert.Contains(open, e.Message);
        var safe = Folder("safe", Rwx);
        Assert.Equal(Path.Combine(safe, "wg7.sock"), UapiSocketFile.DefaultPath("wg7", [(open, Rwx), (safe, Rwx)]));
    }

    [Fact]
    public void A_symbolic_link_is_refused()
    {
        var target = Folder("target", Rwx);
        var link = Path.Combine(_root, "link");
        Directory.CreateSymbolicLink(link, target);
        Assert.Contains("symbolic link", UapiSocketFile.FolderProblem(link));
    }

    [RootFact]
    public void A_folder_of_another_user_is_refused()
    {
        var theirs = Folder("theirs", Rwx | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var chown = System.Diagnostics.Process.Start("chown", ["65534", theirs]);
        chown.WaitForExit();
        Assert.Equal(0, chown.ExitCode);
        Assert.Contains("belongs to another user (uid 65534)", UapiSocketFile.FolderProblem(theirs));
        var e = Assert.Throws<WgException>(() => UapiSocketFile.DefaultPath("wg7", [(theirs, Rwx)]));
        Assert.Equal("UapiDirectoryUnsafe", e.ErrorId);
    }
}

/// <summary>A fact that needs root on Linux (e.g. to chown): skipped with the reason elsewhere, except
/// under CI=true, where it runs and fails instead of hiding.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("CI") == "true") return;
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") Skip = "needs root on Linux (chown to another user)";
    }
}
