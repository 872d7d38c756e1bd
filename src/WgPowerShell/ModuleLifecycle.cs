using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using WgPowerShell.Session;

namespace WgPowerShell;

/// <summary>
/// Import: lets the engine find native libsodium. pwsh ignores a module's deps.json, so P/Invokes to
/// "libsodium" would fail from a portable publish; we probe runtimes/&lt;rid&gt;/native/ next to the dll.
/// Remove-Module: stops the servers of the runspace that removes the module, freeing their ports.
/// </summary>
public sealed class ModuleLifecycle : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static int s_hooked;

    public void OnImport()
    {
        if (Interlocked.Exchange(ref s_hooked, 1) == 1) return;
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += ResolveNative;
        var own = AssemblyLoadContext.GetLoadContext(typeof(ModuleLifecycle).Assembly);
        if (own is not null && own != AssemblyLoadContext.Default) own.ResolvingUnmanagedDll += ResolveNative;
    }

    public void OnRemove(PSModuleInfo psModuleInfo) => SessionStore.StopCurrent();

    private static IntPtr ResolveNative(Assembly requester, string name)
    {
        if (!name.Contains("sodium", StringComparison.OrdinalIgnoreCase)) return IntPtr.Zero;
        var dir = Path.GetDirectoryName(typeof(ModuleLifecycle).Assembly.Location);
        if (string.IsNullOrEmpty(dir)) return IntPtr.Zero;
        string file = OperatingSystem.IsWindows() ? "libsodium.dll" : OperatingSystem.IsMacOS() ? "libsodium.dylib" : "libsodium.so";
        foreach (var rid in CandidateRids())
        {
            var path = Path.Combine(dir, "runtimes", rid, "native", file);
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out var handle)) return handle;
        }
        return IntPtr.Zero;
    }

    /// <summary>The running RID first, then the portable ones for this OS and architecture.</summary>
    private static IEnumerable<string> CandidateRids()
    {
        yield return RuntimeInformation.RuntimeIdentifier;
        string arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        if (OperatingSystem.IsWindows()) yield return "win-" + arch;
        else if (OperatingSystem.IsMacOS()) yield return "osx-" + arch;
        else
        {
            yield return "linux-" + arch;
            yield return "linux-musl-" + arch;
        }
    }
}
