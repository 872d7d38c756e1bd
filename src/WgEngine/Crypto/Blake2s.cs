using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace WgEngine.Crypto;

/// <summary>
/// BLAKE2s (RFC 7693): WireGuard's HASH and MAC. An incremental hasher held on the stack; nothing is allocated.
/// <c>default(Blake2s)</c> / <c>new Blake2s()</c> behave as an unkeyed 32-byte hasher.
/// After <see cref="Finish"/> the state is wiped and the instance refuses further use.
/// </summary>
internal struct Blake2s
{
    public const int HashSize = 32;
    public const int MacSize = 16;
    public const int MaxKeySize = 32;
    public const int BlockSize = 64;

    // Initialisation vector (RFC 7693 section 2.6; the SHA-256 IV).
    private const uint IV0 = 0x6A09E667, IV1 = 0xBB67AE85, IV2 = 0x3C6EF372, IV3 = 0xA54FF53A;
    private const uint IV4 = 0x510E527F, IV5 = 0x9B05688C, IV6 = 0x1F83D9AB, IV7 = 0x5BE0CD19;

    private const byte Fresh = 0, Ready = 1, Finished = 2;

    private uint _h0, _h1, _h2, _h3, _h4, _h5, _h6, _h7;
    private ulong _t;          // bytes compressed so far (the 64-bit counter t0,t1)
    private int _bufLen;
    private int _outLen;
    private byte _state;
    private Block64 _buf;

    [InlineArray(BlockSize)]
    private struct Block64 { private byte _e; }

    /// <summary>A hasher with the given digest length (1..32) and optional key (0..32 bytes).</summary>
    public Blake2s(int outputLength = HashSize, ReadOnlySpan<byte> key = default)
    {
        Init(outputLength, key);
    }

    private void Init(int outputLength, ReadOnlySpan<byte> key)
    {
        if ((uint)(outputLength - 1) >= HashSize) throw new ArgumentOutOfRangeException(nameof(outputLength), "BLAKE2s output length is 1..32 bytes.");
        if (key.Length > MaxKeySize) throw new ArgumentException("BLAKE2s key is at most 32 bytes.", nameof(key));
        // Parameter block word 0: digest length, key length, fanout 1, depth 1 (RFC 7693 section 2.5).
        _h0 = IV0 ^ 0x01010000u ^ ((uint)key.Length << 8) ^ (uint)outputLength;
        _h1 = IV1; _h2 = IV2; _h3 = IV3; _h4 = IV4; _h5 = IV5; _h6 = IV6; _h7 = IV7;
        _t = 0;
        _outLen = outputLength;
        _state = Ready;
        Span<byte> buf = _buf;
        buf.Clear();
        _bufLen = 0;
        if (!key.IsEmpty)
        {
            // The key, zero-padded, is the first block.
            key.CopyTo(buf);
            _bufLen = BlockSize;
        }
    }

    private void EnsureReady()
    {
        if (_state == Ready) return;
        if (_state == Fresh) { Init(HashSize, default); return; }
        throw new InvalidOperationException("This BLAKE2s instance has already been finished.");
    }

    public void Update(ReadOnlySpan<byte> data)
    {
        EnsureReady();
        if (data.IsEmpty) return;
        Span<byte> buf = _buf;
        int fill = BlockSize - _bufLen;
        if (data.Length > fill)
        {
            // The final block must be compressed with the last-block flag, so a full block is only
            // compressed here when more input follows it.
            if (_bufLen > 0)
            {
                data[..fill].CopyTo(buf[_bufLen..]);
                _t += BlockSize;
                Compress(buf, false);
                _bufLen = 0;
                data = data[fill..];
            }
            while (data.Length > BlockSize)
            {
                _t += BlockSize;
                Compress(data, false);
                data = data[BlockSize..];
            }
        }
        data.CopyTo(buf[_bufLen..]);
        _bufLen += data.Length;
    }

    /// <summary>Writes the digest (output.Length must equal the output length) and wipes the state.</summary>
    public void Finish(Span<byte> output)
    {
        EnsureReady();
        if (output.Length != _outLen) throw new ArgumentException($"Output must be {_outLen} bytes.", nameof(output));
        Span<byte> buf = _buf;
        _t += (ulong)_bufLen;
        buf[_bufLen..].Clear();
        Compress(buf, true);

        Span<byte> digest = stackalloc byte[HashSize];
        BinaryPrimitives.WriteUInt32LittleEndian(digest, _h0);
        BinaryPrimitives.WriteUInt32LittleEndian(digest[4..], _h1);
        BinaryPrimitives.WriteUInt32LittleEndian(digest[8..], _h2);
        BinaryPrimitives.WriteUInt32LittleEndian(digest[12..], _h3);
        BinaryPrimitives.WriteUInt32LittleEndian(digest[16..], _h4);
        BinaryPrimitives.WriteUInt32LittleEndian(digest[20..], _h5);
        BinaryPrimitives.WriteUInt32LittleEndian(digest[24..], _h6);
        BinaryPrimitives.WriteUInt32LittleEndian(digest[28..], _h7);
        digest[.._outLen].CopyTo(output);
        digest.Clear();

        buf.Clear();
        _h0 = _h1 = _h2 = _h3 = _h4 = _h5 = _h6 = _h7 = 0;
        _t = 0;
        _bufLen = 0;
        _state = Finished;
    }

    /// <summary>HASH(input): unkeyed BLAKE2s-256.</summary>
    public static void Hash(ReadOnlySpan<byte> input, Span<byte> output32)
    {
        if (output32.Length != HashSize) throw new ArgumentException("Output must be 32 bytes.", nameof(output32));
        var h = new Blake2s(HashSize);
        h.Update(input);
        h.Finish(output32);
    }

    /// <summary>HASH(a || b) without concatenating. The output may alias either input.</summary>
    public static void Hash(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> output32)
    {
        if (output32.Length != HashSize) throw new ArgumentException("Output must be 32 bytes.", nameof(output32));
        var h = new Blake2s(HashSize);
        h.Update(a);
        h.Update(b);
        h.Finish(output32);
    }

    /// <summary>WireGuard's MAC(key, input): keyed BLAKE2s with a 16-byte output.</summary>
    public static void Mac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> input, Span<byte> output16)
    {
        if (output16.Length != MacSize) throw new ArgumentException("Output must be 16 bytes.", nameof(output16));
        var h = new Blake2s(MacSize, key);
        h.Update(input);
        h.Finish(output16);
    }

    /// <summary>The compression function F (RFC 7693 section 3.2) over one 64-byte block, rounds unrolled.</summary>
    private void Compress(ReadOnlySpan<byte> block, bool last)
    {
        if (block.Length < BlockSize) throw new ArgumentException("Short block.", nameof(block));
        ref byte p = ref MemoryMarshal.GetReference(block);
        uint m0 = Word(ref p, 0), m1 = Word(ref p, 4), m2 = Word(ref p, 8), m3 = Word(ref p, 12);
        uint m4 = Word(ref p, 16), m5 = Word(ref p, 20), m6 = Word(ref p, 24), m7 = Word(ref p, 28);
        uint m8 = Word(ref p, 32), m9 = Word(ref p, 36), m10 = Word(ref p, 40), m11 = Word(ref p, 44);
        uint m12 = Word(ref p, 48), m13 = Word(ref p, 52), m14 = Word(ref p, 56), m15 = Word(ref p, 60);

        uint v0 = _h0, v1 = _h1, v2 = _h2, v3 = _h3, v4 = _h4, v5 = _h5, v6 = _h6, v7 = _h7;
        uint v8 = IV0, v9 = IV1, v10 = IV2, v11 = IV3;
        uint v12 = IV4 ^ (uint)_t, v13 = IV5 ^ (uint)(_t >> 32);
        uint v14 = last ? ~IV6 : IV6, v15 = IV7;

        // Message schedule SIGMA from RFC 7693 section 2.7; columns then diagonals each round.
        // Round 0
        G(ref v0, ref v4, ref v8, ref v12, m0, m1);
        G(ref v1, ref v5, ref v9, ref v13, m2, m3);
        G(ref v2, ref v6, ref v10, ref v14, m4, m5);
        G(ref v3, ref v7, ref v11, ref v15, m6, m7);
        G(ref v0, ref v5, ref v10, ref v15, m8, m9);
        G(ref v1, ref v6, ref v11, ref v12, m10, m11);
        G(ref v2, ref v7, ref v8, ref v13, m12, m13);
        G(ref v3, ref v4, ref v9, ref v14, m14, m15);
        // Round 1
        G(ref v0, ref v4, ref v8, ref v12, m14, m10);
        G(ref v1, ref v5, ref v9, ref v13, m4, m8);
        G(ref v2, ref v6, ref v10, ref v14, m9, m15);
        G(ref v3, ref v7, ref v11, ref v15, m13, m6);
        G(ref v0, ref v5, ref v10, ref v15, m1, m12);
        G(ref v1, ref v6, ref v11, ref v12, m0, m2);
        G(ref v2, ref v7, ref v8, ref v13, m11, m7);
        G(ref v3, ref v4, ref v9, ref v14, m5, m3);
        // Round 2
        G(ref v0, ref v4, ref v8, ref v12, m11, m8);
        G(ref v1, ref v5, ref v9, ref v13, m12, m0);
        G(ref v2, ref v6, ref v10, ref v14, m5, m2);
        G(ref v3, ref v7, ref v11, ref v15, m15, m13);
        G(ref v0, ref v5, ref v10, ref v15, m10, m14);
        G(ref v1, ref v6, ref v11, ref v12, m3, m6);
        G(ref v2, ref v7, ref v8, ref v13, m7, m1);
        G(ref v3, ref v4, ref v9, ref v14, m9, m4);
        // Round 3
        G(ref v0, ref v4, ref v8, ref v12, m7, m9);
        G(ref v1, ref v5, ref v9, ref v13, m3, m1);
        G(ref v2, ref v6, ref v10, ref v14, m13, m12);
        G(ref v3, ref v7, ref v11, ref v15, m11, m14);
        G(ref v0, ref v5, ref v10, ref v15, m2, m6);
        G(ref v1, ref v6, ref v11, ref v12, m5, m10);
        G(ref v2, ref v7, ref v8, ref v13, m4, m0);
        G(ref v3, ref v4, ref v9, ref v14, m15, m8);
        // Round 4
        G(ref v0, ref v4, ref v8, ref v12, m9, m0);
        G(ref v1, ref v5, ref v9, ref v13, m5, m7);
        G(ref v2, ref v6, ref v10, ref v14, m2, m4);
        G(ref v3, ref v7, ref v11, ref v15, m10, m15);
        G(ref v0, ref v5, ref v10, ref v15, m14, m1);
        G(ref v1, ref v6, ref v11, ref v12, m11, m12);
        G(ref v2, ref v7, ref v8, ref v13, m6, m8);
        G(ref v3, ref v4, ref v9, ref v14, m3, m13);
        // Round 5
        G(ref v0, ref v4, ref v8, ref v12, m2, m12);
        G(ref v1, ref v5, ref v9, ref v13, m6, m10);
        G(ref v2, ref v6, ref v10, ref v14, m0, m11);
        G(ref v3, ref v7, ref v11, ref v15, m8, m3);
        G(ref v0, ref v5, ref v10, ref v15, m4, m13);
        G(ref v1, ref v6, ref v11, ref v12, m7, m5);
        G(ref v2, ref v7, ref v8, ref v13, m15, m14);
        G(ref v3, ref v4, ref v9, ref v14, m1, m9);
        // Round 6
        G(ref v0, ref v4, ref v8, ref v12, m12, m5);
        G(ref v1, ref v5, ref v9, ref v13, m1, m15);
        G(ref v2, ref v6, ref v10, ref v14, m14, m13);
        G(ref v3, ref v7, ref v11, ref v15, m4, m10);
        G(ref v0, ref v5, ref v10, ref v15, m0, m7);
        G(ref v1, ref v6, ref v11, ref v12, m6, m3);
        G(ref v2, ref v7, ref v8, ref v13, m9, m2);
        G(ref v3, ref v4, ref v9, ref v14, m8, m11);
        // Round 7
        G(ref v0, ref v4, ref v8, ref v12, m13, m11);
        G(ref v1, ref v5, ref v9, ref v13, m7, m14);
        G(ref v2, ref v6, ref v10, ref v14, m12, m1);
        G(ref v3, ref v7, ref v11, ref v15, m3, m9);
        G(ref v0, ref v5, ref v10, ref v15, m5, m0);
        G(ref v1, ref v6, ref v11, ref v12, m15, m4);
        G(ref v2, ref v7, ref v8, ref v13, m8, m6);
        G(ref v3, ref v4, ref v9, ref v14, m2, m10);
        // Round 8
        G(ref v0, ref v4, ref v8, ref v12, m6, m15);
        G(ref v1, ref v5, ref v9, ref v13, m14, m9);
        G(ref v2, ref v6, ref v10, ref v14, m11, m3);
        G(ref v3, ref v7, ref v11, ref v15, m0, m8);
        G(ref v0, ref v5, ref v10, ref v15, m12, m2);
        G(ref v1, ref v6, ref v11, ref v12, m13, m7);
        G(ref v2, ref v7, ref v8, ref v13, m1, m4);
        G(ref v3, ref v4, ref v9, ref v14, m10, m5);
        // Round 9
        G(ref v0, ref v4, ref v8, ref v12, m10, m2);
        G(ref v1, ref v5, ref v9, ref v13, m8, m4);
        G(ref v2, ref v6, ref v10, ref v14, m7, m6);
        G(ref v3, ref v7, ref v11, ref v15, m1, m5);
        G(ref v0, ref v5, ref v10, ref v15, m15, m11);
        G(ref v1, ref v6, ref v11, ref v12, m9, m14);
        G(ref v2, ref v7, ref v8, ref v13, m3, m12);
        G(ref v3, ref v4, ref v9, ref v14, m13, m0);
        _h0 ^= v0 ^ v8; _h1 ^= v1 ^ v9; _h2 ^= v2 ^ v10; _h3 ^= v3 ^ v11;
        _h4 ^= v4 ^ v12; _h5 ^= v5 ^ v13; _h6 ^= v6 ^ v14; _h7 ^= v7 ^ v15;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Word(ref byte p, int offset)
    {
        uint w = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, offset));
        return BitConverter.IsLittleEndian ? w : BinaryPrimitives.ReverseEndianness(w);
    }

    /// <summary>The mixing function G (RFC 7693 section 3.1) with BLAKE2s rotations 16, 12, 8, 7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void G(ref uint a, ref uint b, ref uint c, ref uint d, uint x, uint y)
    {
        a = a + b + x; d = BitOperations.RotateRight(d ^ a, 16);
        c += d; b = BitOperations.RotateRight(b ^ c, 12);
        a = a + b + y; d = BitOperations.RotateRight(d ^ a, 8);
        c += d; b = BitOperations.RotateRight(b ^ c, 7);
    }
}
