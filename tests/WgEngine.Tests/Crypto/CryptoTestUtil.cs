namespace WgEngine.Tests.Crypto;

internal static class CryptoTestUtil
{
    /// <summary>The repository root: the nearest ancestor of the test binaries holding WgPowerShell.sln.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "WgPowerShell.sln"))) return dir.FullName;
        throw new InvalidOperationException("WgPowerShell.sln not found above " + AppContext.BaseDirectory);
    }

    public static byte[] Hex(string hex) => Convert.FromHexString(hex);
    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}
