using System.Management.Automation;
using System.Text;
using WgPowerShell.Formatting;
using WgPowerShell.Models;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// ConvertTo-WgQRCode: a client config as a QR code the WireGuard mobile apps scan. Without -OutFile,
/// lines of text for the terminal; with -OutFile, a PNG (mode 0600: it holds a private key) and its
/// FileInfo. A WgClient (or a deserialized one: any object with a string Config) renders its Config; strings are joined with newlines and rendered once at the
/// end, so `Get-Content client.conf | ConvertTo-WgQRCode` works line by line as well as with -Raw.
/// </summary>
[Cmdlet(VerbsData.ConvertTo, "WgQRCode")]
[OutputType(typeof(string), typeof(FileInfo))]
public sealed class ConvertToWgQRCodeCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [AllowEmptyString]
    public object InputObject { get; set; } = "";

    /// <summary>A PNG file to write instead of terminal lines.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? OutFile { get; set; }

    [Parameter]
    [ValidateRange(1, 100)]
    public int PixelsPerModule { get; set; } = 8;

    /// <summary>For terminals with dark text on a light background: the glyphs draw the dark modules.</summary>
    [Parameter]
    public SwitchParameter LightBackground { get; set; }

    private readonly StringBuilder _text = new();
    private bool _anyText;
    private bool _wroteFile;

    protected override void ProcessRecord()
    {
        var o = InputObject is PSObject pso ? pso.BaseObject : InputObject;
        switch (o)
        {
            case WgClient client:
                Emit(client.Config, client.Name);
                break;
            case string s:
                if (_anyText) _text.Append('\n');
                _text.Append(s);
                _anyText = true;
                break;
            case not null when InputObject is PSObject { Properties: var props } && props["Config"]?.Value is string config:
                // A WgClient that went through Export-Clixml / a remoting session comes back as a property bag.
                Emit(config, props["Name"]?.Value as string ?? "client");
                break;
            default:
                WriteError(new ErrorRecord(new ArgumentException($"ConvertTo-WgQRCode takes a WgClient (from New-WgClient) or config text, not {o?.GetType().Name ?? "null"}."),
                    "UnsupportedQRInput", ErrorCategory.InvalidType, o));
                break;
        }
    }

    protected override void EndProcessing()
    {
        if (!_anyText) return;
        var text = _text.ToString().TrimEnd('\r', '\n') + "\n";
        if (string.IsNullOrWhiteSpace(text))
        {
            WriteError(new ErrorRecord(new ArgumentException("The config text is empty."), "EmptyQRInput", ErrorCategory.InvalidData, null));
            return;
        }
        Emit(text, "config");
    }

    private void Emit(string text, string what)
    {
        if (OutFile is null)
        {
            foreach (var line in WgQrCode.TerminalLines(text, darkInk: LightBackground)) WriteObject(line);
            return;
        }
        if (_wroteFile)
        {
            WriteError(new ErrorRecord(new InvalidOperationException($"-OutFile holds one QR code; '{what}' was not written. Pipe one client per call, or omit -OutFile."),
                "OneQRPerFile", ErrorCategory.InvalidOperation, what));
            return;
        }
        var path = GetUnresolvedProviderPathFromPSPath(OutFile);
        var png = WgQrCode.Png(text, PixelsPerModule);
        WritePrivateFile(path, png);
        _wroteFile = true;
        WriteVerbose($"Wrote the QR code of '{what}' to {path} ({png.Length} bytes, mode 0600).");
        WriteObject(new FileInfo(path));
    }

    /// <summary>Owner-only from the first byte: a new file is created 0600, an existing one is narrowed before it is overwritten.</summary>
    private static void WritePrivateFile(string path, byte[] bytes)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            if (File.Exists(path)) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        using var fs = new FileStream(path, options);
        fs.Write(bytes);
    }
}
