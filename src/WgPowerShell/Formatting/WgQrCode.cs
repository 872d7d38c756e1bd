using System.Text;
using QRCoder;

namespace WgPowerShell.Formatting;

/// <summary>
/// A config as a QR code: PNG bytes, or lines of Unicode half blocks for a terminal. Error correction
/// L, the level `qrencode -t ansiutf8 &lt; wg0.conf` uses (WireGuard's own docs), which keeps a full
/// config with a preshared key narrow enough for an 80-column terminal.
/// </summary>
public static class WgQrCode
{
    public const QRCodeGenerator.ECCLevel Ecc = QRCodeGenerator.ECCLevel.L;

    // Dark modules black, light ones white; PNG is opaque.
    private static readonly byte[] Dark = [0, 0, 0, 255];
    private static readonly byte[] Light = [255, 255, 255, 255];

    /// <summary>The module grid, quiet zone (4 modules) included; true = dark.</summary>
    public static bool[,] Modules(string text)
    {
        using var data = Encode(text);
        var m = data.ModuleMatrix;
        int n = m.Count;
        var grid = new bool[n, n];
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) grid[y, x] = m[y][x];
        return grid;
    }

    public static byte[] Png(string text, int pixelsPerModule)
    {
        if (pixelsPerModule is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(pixelsPerModule), "1 to 100 pixels per module.");
        using var data = Encode(text);
        return new PngByteQRCode(data).GetGraphic(pixelsPerModule, Dark, Light, drawQuietZones: true);
    }

    /// <summary>The code as an SVG document (black on white, quiet zone included), scalable for any display.</summary>
    public static string Svg(string text, int pixelsPerModule = 8)
    {
        if (pixelsPerModule is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(pixelsPerModule), "1 to 100 pixels per module.");
        using var data = Encode(text);
        return new SvgQRCode(data).GetGraphic(pixelsPerModule, "#000000", "#ffffff", drawQuietZones: true);
    }

    /// <summary>
    /// Two module rows per line. The glyph's ink marks LIGHT modules, so on the usual light-on-dark
    /// terminal the code reads dark-on-light as scanners expect: '█' both light, '▀' top light,
    /// '▄' bottom light, ' ' both dark. The quiet zone (light) frames it; the odd last row's missing
    /// lower half is outside the code. <paramref name="darkInk"/> flips that for terminals with dark
    /// text on a light background: the glyphs then mark DARK modules.
    /// </summary>
    public static string[] TerminalLines(string text, bool darkInk = false)
    {
        var g = Modules(text);
        int n = g.GetLength(0);
        var lines = new string[(n + 1) / 2];
        var sb = new StringBuilder(n);
        for (int y = 0; y < n; y += 2)
        {
            sb.Clear();
            for (int x = 0; x < n; x++)
            {
                bool top = g[y, x] == darkInk;
                bool bottom = y + 1 < n && g[y + 1, x] == darkInk;
                sb.Append(top ? (bottom ? '█' : '▀') : (bottom ? '▄' : ' '));
            }
            lines[y / 2] = sb.ToString();
        }
        return lines;
    }

    private static QRCodeData Encode(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        using var generator = new QRCodeGenerator();
        // UTF-8 only when needed: a plain-ASCII config stays in byte mode without an ECI header,
        // which every scanner reads.
        bool ascii = Ascii.IsValid(text);
        return generator.CreateQrCode(text, Ecc, forceUtf8: !ascii);
    }
}
