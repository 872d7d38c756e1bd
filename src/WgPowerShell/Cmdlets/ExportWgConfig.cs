using System.Management.Automation;
using WgEngine.Config;
using WgEngine.Gateway;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Export-WgConfig: a server's configuration as wg-quick or `wg showconf` text. Without -Path it outputs
/// the text, with the PrivateKey line only when -IncludePrivateKey is given and the peers' PresharedKey
/// lines only when -IncludePresharedKey is given. With -Path it writes a config file (every key
/// included) atomically with mode 0600.
/// </summary>
[Cmdlet(VerbsData.Export, "WgConfig", SupportsShouldProcess = true)]
[OutputType(typeof(string))]
public sealed class ExportWgConfigCommand : WgPeerCmdletBase
{
    /// <summary>A file to write; omitted = output the text.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    [Parameter]
    public WgConfigFormat Format { get; set; } = WgConfigFormat.WgQuick;

    /// <summary>Include the PrivateKey line in the text output (a file written with -Path always has it).</summary>
    [Parameter]
    public SwitchParameter IncludePrivateKey { get; set; }

    /// <summary>Include the peers' PresharedKey lines in the text output (a file written with -Path always has them).</summary>
    [Parameter]
    public SwitchParameter IncludePresharedKey { get; set; }

    protected override void ProcessRecord()
    {
        var server = ResolveServer();
        if (server is null) return;
        if (Path is null)
        {
            WriteObject(server.ExportConfigText(Format, IncludePrivateKey, IncludePresharedKey));
            return;
        }
        var full = GetUnresolvedProviderPathFromPSPath(Path);
        if (!ShouldProcess($"{Format} config of server '{server.Name}' ({server.PeerCount} peers, with its private key and preshared keys) to '{full}'", "Export"))
            return;
        try
        {
            AtomicFile.WriteAllText(full, server.ExportConfigText(Format, includePrivateKey: true, includePresharedKeys: true));
            WriteVerbose($"Wrote the {Format} config of '{server.Name}' to {full} (mode 0600).");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            WriteError(new ErrorRecord(e, "ConfigWriteFailed", ErrorCategory.WriteError, full));
        }
    }
}
