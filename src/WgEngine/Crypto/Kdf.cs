using System.Security.Cryptography;

namespace WgEngine.Crypto;

/// <summary>
/// WireGuard's HMAC and HKDF-style KDF over BLAKE2s (whitepaper section 5.4; PROTOCOL.md "KDF_n"):
/// t0 = HMAC(key, input); t1 = HMAC(t0, 0x01); t_i = HMAC(t0, t_(i-1) || i).
/// Every output span may alias the key or input (e.g. <c>Kdf2(c, x, c, k)</c>): results are computed
/// into stack temporaries, copied out last, and the temporaries are zeroed.
/// </summary>
internal static class Kdf
{
    public const int Size = Blake2s.HashSize;
    private const int Block = Blake2s.BlockSize;

    /// <summary>HMAC-BLAKE2s-256 (RFC 2104 with a 64-byte block). Output may alias key or input.</summary>
    public static void Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output32) =>
        Hmac(key, input, default, output32);

    /// <summary>HMAC(key, a || b) without concatenating.</summary>
    internal static void Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> output32)
    {
        if (output32.Length != Size) throw new ArgumentException("Output must be 32 bytes.", nameof(output32));
        Span<byte> pad = stackalloc byte[Block];
        Span<byte> inner = stackalloc byte[Size];
        pad.Clear();
        if (key.Length > Block) Blake2s.Hash(key, pad[..Size]); // RFC 2104: long keys are hashed first
        else key.CopyTo(pad);

        for (int i = 0; i < Block; i++) pad[i] ^= 0x36;
        var h = new Blake2s(Size);
        h.Update(pad);
        h.Update(a);
        h.Update(b);
        h.Finish(inner);

        for (int i = 0; i < Block; i++) pad[i] ^= 0x36 ^ 0x5c;
        h = new Blake2s(Size);
        h.Update(pad);
        h.Update(inner);
        h.Finish(output32); // written last, so aliasing key/input is harmless

        CryptographicOperations.ZeroMemory(pad);
        CryptographicOperations.ZeroMemory(inner);
    }

    public static void Kdf1(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1)
    {
        CheckOut(t1, nameof(t1));
        Span<byte> tmp = stackalloc byte[2 * Size];
        Span<byte> prk = tmp[..Size], o1 = tmp[Size..];
        Hmac(key, input, prk);
        Hmac(prk, One, o1);
        o1.CopyTo(t1);
        CryptographicOperations.ZeroMemory(tmp);
    }

    public static void Kdf2(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2)
    {
        CheckOut(t1, nameof(t1)); CheckOut(t2, nameof(t2));
        Span<byte> tmp = stackalloc byte[3 * Size];
        Span<byte> prk = tmp[..Size], o1 = tmp.Slice(Size, Size), o2 = tmp.Slice(2 * Size, Size);
        Hmac(key, input, prk);
        Hmac(prk, One, o1);
        Hmac(prk, o1, Two, o2);
        o1.CopyTo(t1);
        o2.CopyTo(t2);
        CryptographicOperations.ZeroMemory(tmp);
    }

    public static void Kdf3(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> t1, Span<byte> t2, Span<byte> t3)
    {
        CheckOut(t1, nameof(t1)); CheckOut(t2, nameof(t2)); CheckOut(t3, nameof(t3));
        Span<byte> tmp = stackalloc byte[4 * Size];
        Span<byte> prk = tmp[..Size], o1 = tmp.Slice(Size, Size), o2 = tmp.Slice(2 * Size, Size), o3 = tmp.Slice(3 * Size, Size);
        Hmac(key, input, prk);
        Hmac(prk, One, o1);
        Hmac(prk, o1, Two, o2);
        Hmac(prk, o2, Three, o3);
        o1.CopyTo(t1);
        o2.CopyTo(t2);
        o3.CopyTo(t3);
        CryptographicOperations.ZeroMemory(tmp);
    }

    private static ReadOnlySpan<byte> One => [1];
    private static ReadOnlySpan<byte> Two => [2];
    private static ReadOnlySpan<byte> Three => [3];

    private static void CheckOut(Span<byte> s, string name)
    {
        if (s.Length != Size) throw new ArgumentException("KDF outputs are 32 bytes.", name);
    }
}
