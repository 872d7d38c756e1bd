using StbImageSharp;
using WgEngine.Crypto;
using WgPowerShell.Formatting;
using ZXing;
using ZXing.Common;

namespace WgEngine.Tests.Client;

/// <summary>
/// The QR codes New-WgClient's configs turn into are read back by an independent decoder (ZXing):
/// the PNG through a PNG reader, the terminal lines by turning the half-block glyphs back into modules.
/// </summary>
public class ClientQrCodeTests
{
    // Fixed key material: ZXing's detector misses about 1 in 100 random codes that another decoder
    // (zbarimg) reads fine, so random keys made these tests fail at random without a fault of ours.
    private static string Key(int seed)
    {
        var bytes = new byte[32];
        new Random(seed).NextBytes(bytes);
        return Convert.ToBase64String(bytes);
    }

    private static string SampleConfig(bool psk)
    {
        return ClientConfigText.Render(new ClientConfigSpec
        {
            PrivateKey = Key(1),
            Address = ["10.8.0.2/32", "fd00:8::2/128"],
            DNS = ["1.1.1.1", "2606:4700:4700::1111"],
            ServerPublicKey = Key(2),
            PresharedKey = psk ? Key(3) : null,
            Endpoint = "vpn.example.com:51820",
            AllowedIPs = ["0.0.0.0/0", "::/0"],
            PersistentKeepalive = 25,
        });
    }

    private static string? Decode(byte[] gray, int width, int height)
    {
        var reader = new BarcodeReaderGeneric
        {
            AutoRotate = false,
            Options = new DecodingOptions { PossibleFormats = [BarcodeFormat.QR_CODE], TryHarder = true },
        };
        return reader.Decode(new RGBLuminanceSource(gray, width, height, RGBLuminanceSource.BitmapFormat.Gray8))?.Text;
    }

    [Theory]
    [InlineData(false, 4)]
    [InlineData(true, 8)]
    public void Png_decodes_to_the_exact_config(bool psk, int pixelsPerModule)
    {
        var config = SampleConfig(psk);
        var png = WgQrCode.Png(config, pixelsPerModule);
        var image = ImageResult.FromMemory(png, ColorComponents.Grey);
        Assert.Equal(WgQrCode.Modules(config).GetLength(0) * pixelsPerModule, image.Width);
        Assert.Equal(config, Decode(image.Data, image.Width, image.Height));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Terminal_lines_decode_to_the_exact_config(bool psk, bool lightBackground)
    {
        var config = SampleConfig(psk);
        var lines = WgQrCode.TerminalLines(config, darkInk: lightBackground);

        // Back to a grid of modules, then to pixels (4 per module). Glyph ink is what the terminal shows
        // in its text colour: light on a dark background, dark with lightBackground.
        int n = lines[0].Length, rows = lines.Length * 2;
        const int scale = 4;
        var gray = new byte[n * scale * rows * scale];
        for (int l = 0; l < lines.Length; l++)
        {
            Assert.Equal(n, lines[l].Length);
            for (int x = 0; x < n; x++)
            {
                var (top, bottom) = lines[l][x] switch
                {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    var c => throw new Xunit.Sdk.XunitException($"unexpected glyph U+{(int)c:X4}"),
                };
                Paint(gray, n * scale, x, 2 * l, top != lightBackground, scale);
                Paint(gray, n * scale, x, 2 * l + 1, bottom != lightBackground, scale);
            }
        }
        Assert.Equal(config, Decode(gray, n * scale, rows * scale));
    }

    private static void Paint(byte[] gray, int stride, int mx, int my, bool light, int scale)
    {
        for (int dy = 0; dy < scale; dy++)
            for (int dx = 0; dx < scale; dx++)
                gray[(my * scale + dy) * stride + mx * scale + dx] = light ? (byte)255 : (byte)0;
    }

    [Fact]
    public void Terminal_lines_frame_the_code_in_a_light_quiet_zone_and_fit_80_columns()
    {
        var config = SampleConfig(psk: true);
        var grid = WgQrCode.Modules(config);
        int n = grid.GetLength(0);
        for (int i = 0; i < n; i++)
            for (int q = 0; q < 4; q++)
            {
                Assert.False(grid[q, i]); Assert.False(grid[n - 1 - q, i]);
                Assert.False(grid[i, q]); Assert.False(grid[i, n - 1 - q]);
            }
        var lines = WgQrCode.TerminalLines(config);
        Assert.Equal((n + 1) / 2, lines.Length);
        Assert.All(lines, l => Assert.True(l.Length <= 80, $"{l.Length} columns"));
        Assert.Equal(new string('█', n), lines[0]);
        Assert.Equal(new string('█', n), lines[1]);
    }

    [Fact]
    public void Png_size_follows_pixels_per_module_and_rejects_nonsense()
    {
        var config = SampleConfig(psk: false);
        int n = WgQrCode.Modules(config).GetLength(0);
        var image = ImageResult.FromMemory(WgQrCode.Png(config, 3), ColorComponents.Grey);
        Assert.Equal(n * 3, image.Height);
        Assert.Throws<ArgumentOutOfRangeException>(() => WgQrCode.Png(config, 0));
        Assert.ThrowsAny<ArgumentException>(() => WgQrCode.Png("", 4));
    }
}
