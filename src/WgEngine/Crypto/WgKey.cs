using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace WgEngine.Crypto;

/// <summary>
/// A 32-byte WireGuard public key (or any 32-byte value that may be shown, e.g. as a dictionary key).
/// Text form is base64 (44 characters), as `wg pubkey` prints; UAPI uses hex.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct WgKey : IEquatable<WgKey>
{
    public const int Size = 32;
    private readonly ulong _a, _b, _c, _d;

    public WgKey(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException("A WireGuard key is exactly 32 bytes.", nameof(bytes));
        _a = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]);
        _d = BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]);
    }

    public bool IsZero => (_a | _b | _c | _d) == 0;

    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, _a);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], _d);
    }

    public byte[] ToArray() { var b = new byte[Size]; CopyTo(b); return b; }

    /// <summary>Parses base64 text of exactly 32 bytes. The message never echoes the input (it may be a secret).</summary>
    public static WgKey Parse(string? text) =>
        TryParse(text, out var k) ? k : throw new FormatException(KeyText.InvalidKeyMessage);

    public static bool TryParse(string? text, out WgKey key)
    {
        key = default;
        Span<byte> buf = stackalloc byte[Size];
        if (!KeyText.TryDecodeBase64(text, buf)) return false;
        key = new WgKey(buf);
        return true;
    }

    public static WgKey FromHex(string text) =>
        KeyText.TryDecodeHex(text, out var k) ? k : throw new FormatException("Not a 64-character hex key.");

    public string ToBase64() { Span<byte> b = stackalloc byte[Size]; CopyTo(b); return Convert.ToBase64String(b); }
    public string ToHex() { Span<byte> b = stackalloc byte[Size]; CopyTo(b); return Convert.ToHexStringLower(b); }
    public override string ToString() => ToBase64();

    public bool Equals(WgKey other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;
    public override bool Equals(object? obj) => obj is WgKey k && Equals(k);
    public override int GetHashCode() => HashCode.Combine(_a, _b, _c, _d);
    public static bool operator ==(WgKey x, WgKey y) => x.Equals(y);
    public static bool operator !=(WgKey x, WgKey y) => !x.Equals(y);
}

/// <summary>
/// A Curve25519 private key. Its ToString never reveals it; only <see cref="ExportBase64"/> does, on purpose.
/// </summary>
public sealed class WgPrivateKey : IDisposable
{
    private readonly byte[] _key = new byte[WgKey.Size];

    private WgPrivateKey(ReadOnlySpan<byte> key)
    {
        key.CopyTo(_key);
        Span<byte> pub = stackalloc byte[WgKey.Size];
        X25519.PublicKey(_key, pub);
        PublicKey = new WgKey(pub);
    }

    public WgKey PublicKey { get; }

    /// <summary>The raw bytes, for the engine's handshake code only.</summary>
    internal ReadOnlySpan<byte> Span => _key;

    public static WgPrivateKey Generate()
    {
        Span<byte> k = stackalloc byte[WgKey.Size];
        X25519.GeneratePrivateKey(k);
        var key = new WgPrivateKey(k);
        k.Clear();
        return key;
    }

    public static WgPrivateKey FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != WgKey.Size) throw new ArgumentException("A WireGuard key is exactly 32 bytes.", nameof(bytes));
        // Clamp as wg does on use; a key that `wg genkey` made is unchanged by this.
        Span<byte> k = stackalloc byte[WgKey.Size];
        bytes.CopyTo(k);
        X25519.Clamp(k);
        var key = new WgPrivateKey(k);
        k.Clear();
        return key;
    }

    public static WgPrivateKey Parse(string? text)
    {
        Span<byte> buf = stackalloc byte[WgKey.Size];
        if (!KeyText.TryDecodeBase64(text, buf)) throw new FormatException(KeyText.InvalidKeyMessage);
        var key = FromBytes(buf);
        buf.Clear();
        return key;
    }

    public static bool TryParse(string? text, out WgPrivateKey? key)
    {
        key = null;
        Span<byte> buf = stackalloc byte[WgKey.Size];
        if (!KeyText.TryDecodeBase64(text, buf)) return false;
        key = FromBytes(buf);
        buf.Clear();
        return true;
    }

    /// <summary>Deliberately named: the only way to get the secret as text (for `New-WgKey` and config files).</summary>
    public string ExportBase64() => Convert.ToBase64String(_key);
    public string ExportHex() => Convert.ToHexStringLower(_key);

    public override string ToString() => $"WgPrivateKey(public {PublicKey})";

    public void Dispose() => Array.Clear(_key);
}

internal static class KeyText
{
    public const string InvalidKeyMessage =
        "Not a valid WireGuard key: expected 44 characters of base64 that decode to exactly 32 bytes (as made by `wg genkey` or New-WgKey).";

    public static bool TryDecodeBase64(string? text, Span<byte> dest32)
    {
        if (text is null) return false;
        text = text.Trim();
        if (text.Length != 44 || text[43] != '=' || text[42] == '=') return false;
        return Convert.TryFromBase64String(text, dest32, out int n) && n == WgKey.Size;
    }

    public static bool TryDecodeHex(string? text, out WgKey key)
    {
        key = default;
        if (text is null || text.Length != 64) return false;
        Span<byte> b = stackalloc byte[WgKey.Size];
        for (int i = 0; i < 32; i++)
        {
            int hi = HexVal(text[2 * i]), lo = HexVal(text[2 * i + 1]);
            if (hi < 0 || lo < 0) return false;
            b[i] = (byte)(hi << 4 | lo);
        }
        key = new WgKey(b);
        return true;
    }

    private static int HexVal(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };
}
