using WgEngine.Config;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Config;

[Collection("AtomicFile")]   // the test seam is static
public sealed class AtomicFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wgatomic-").FullName;

    public void Dispose()
    {
        AtomicFile.BeforeRename = null;
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Creates_the_file_with_mode_0600_and_leaves_no_temp_file()
    {
        var path = Path.Combine(_dir, "wg0.conf");
        AtomicFile.WriteAllText(path, "hello\n");
        Assert.Equal("hello\n", File.ReadAllText(path));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(["wg0.conf"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [HostFact(HostNeeds.Unix)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Replacing_a_world_readable_file_yields_mode_0600()
    {
        var path = Path.Combine(_dir, "wg0.conf");
        File.WriteAllText(path, "old");
        File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100);
        AtomicFile.WriteAllText(path, "new");
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void A_failure_before_the_rename_leaves_the_original_and_no_temp_file()
    {
        var path = Path.Combine(_dir, "wg0.conf");
        File.WriteAllText(path, "original");
        string? seenTemp = null;
        AtomicFile.BeforeRename = t => { seenTemp = t; throw new IOException("disk full (simulated)"); };
        Assert.Throws<IOException>(() => AtomicFile.WriteAllText(path, "replacement"));
        Assert.NotNull(seenTemp);
        Assert.StartsWith(_dir, seenTemp);   // same directory: the rename cannot cross file systems
        Assert.Equal("original", File.ReadAllText(path));
        Assert.Equal(["wg0.conf"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void A_failing_rename_leaves_no_temp_file()
    {
        var path = Path.Combine(_dir, "adir");
        Directory.CreateDirectory(path);   // a file cannot replace a directory
        Assert.ThrowsAny<IOException>(() => AtomicFile.WriteAllText(path, "x"));
        Assert.Empty(Directory.GetFiles(_dir));
    }
}
