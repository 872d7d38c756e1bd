namespace WgEngine.Tests.TestSupport;

internal static class RepoPaths
{
    /// <summary>The repository root: the nearest folder above the test binaries holding WgPowerShell.sln.</summary>
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "WgPowerShell.sln"))) return dir.FullName;
            throw new DirectoryNotFoundException("Repository root (WgPowerShell.sln) not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Vector(string name) => Path.Combine(Root, "tests", "vectors", name);
}
