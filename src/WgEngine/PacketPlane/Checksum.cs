using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace WgEngine.PacketPlane;

/// <summary>
/// The Internet checksum (RFC 1071): the 16-bit one's complement of the one's complement sum of the
/// data as big-endian 16-bit words. All ushort values here are numeric big-endian word values, i.e.
/// write them with <see cref="BinaryPrimitives.WriteUInt16BigEndian"/>.
/// </summary>
internal static class Checksum
{
    /// <summary>
    /// One's complement sum of <paramref name="data"/> (not complemented), folded to 16 bits. An odd
    /// trailing byte counts as the high byte of a zero-padded word. Chain segments with <see cref="Add"/>;
    /// every segment but the last must have even length.
    /// </summary>
    public static ushort Sum(ReadOnlySpan<byte> data)
    {
        // RFC 1071 §2(B): the sum is byte-order independent, so add native-order 64-bit words with
        // end-around carry and swap once at the end on little-endian machines.
        ushort folded = Fold(SumNative(data));
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(folded) : folded;
    }

    /// <summary>The checksum to store: ~Sum(data). Compute it with the checksum field zeroed.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => (ushort)~Sum(data);

    /// <summary>True if data including its checksum field sums to 0xFFFF.</summary>
    public static bool IsValid(ReadOnlySpan<byte> data) => Sum(data) == 0xFFFF;

    /// <summary>One's complement addition of two 16-bit sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Add(ushort a, ushort b)
    {
        uint s = (uint)a + b;
        return (ushort)((s & 0xFFFF) + (s >> 16));
    }

    /// <summary>
    /// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, 32-bit upper-layer length,
    /// three zero bytes and the next header value.
    /// </summary>
    public static ushort PseudoHeaderSumV6(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, int upperLayerLength, byte nextHeader)
    {
        if (source.Length != 16 || destination.Length != 16) throw new ArgumentException("IPv6 addresses are 16 bytes.");
        ulong sum = SumNative(source);
        sum = AddCarry(sum, SumNative(destination));
        ushort s = Fold(sum);
        if (BitConverter.IsLittleEndian) s = BinaryPrimitives.ReverseEndianness(s);
        s = Add(s, (ushort)((uint)upperLayerLength >> 16));
        s = Add(s, (ushort)upperLayerLength);
        return Add(s, nextHeader);
    }

    /// <summary>Sum of the IPv4 pseudo-header used by TCP/UDP (RFC 793 / RFC 768): source, destination, zero, protocol, length.</summary>
    public static ushort PseudoHeaderSumV4(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, int upperLayerLength, byte protocol)
    {
        if (source.Length != 4 || destination.Length != 4) throw new ArgumentException("IPv4 addresses are 4 bytes.");
        ushort s = Add(Sum(source), Sum(destination));
        s = Add(s, protocol);
        return Add(s, (ushort)upperLayerLength);
    }

    /// <summary>Checksum of an upper-layer message over IPv6 (e.g. ICMPv6, next header 58), checksum field zeroed.</summary>
    public static ushort ComputeV6(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, byte nextHeader, ReadOnlySpan<byte> upperLayer) =>
        (ushort)~Add(PseudoHeaderSumV6(source, destination, upperLayer.Length, nextHeader), Sum(upperLayer));

    /// <summary>True if an upper-layer message over IPv6, checksum field included, verifies with its pseudo-header.</summary>
    public static bool IsValidV6(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, byte nextHeader, ReadOnlySpan<byte> upperLayer) =>
        Add(PseudoHeaderSumV6(source, destination, upperLayer.Length, nextHeader), Sum(upperLayer)) == 0xFFFF;

    /// <summary>
    /// Incremental update (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')) when one 16-bit word changes from
    /// <paramref name="oldWord"/> to <paramref name="newWord"/>.
    /// </summary>
    public static ushort Update(ushort checksum, ushort oldWord, ushort newWord)
    {
        ushort s = Add((ushort)~checksum, (ushort)~oldWord);
        return (ushort)~Add(s, newWord);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AddCarry(ulong sum, ulong v)
    {
        sum += v;
        return sum + (sum < v ? 1UL : 0UL);
    }

    /// <summary>Below this many bytes the scalar loop is as fast as setting up the vector one.</summary>
    private const int VectorThreshold = 64;

    /// <summary>One's complement sum of native-order words, kept in 64 bits with end-around carry.</summary>
    private static ulong SumNative(ReadOnlySpan<byte> data)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        int n = data.Length, i = 0;
        ulong sum = 0;
        if (n >= VectorThreshold && Vector256.IsHardwareAccelerated)
        {
            i = n & ~63;
            sum = SumVector256(ref p, i);
        }
        return SumScalar(ref p, i, n, sum);
    }

    /// <summary>
    /// The sum of the first <paramref name="length"/> bytes (a multiple of 64), 64 at a time. The one's complement
    /// sum is the plain sum modulo 2^16 - 1, and 2^32 and 2^64 are both 1 modulo it (RFC 1071 §2(C): any word size
    /// and any deferral of the carries give the same folded result). So 32-bit native words are added into 64-bit
    /// lanes without carries at all: each lane grows by less than 2^32 per 64 bytes and cannot wrap before 2^31
    /// bytes, more than a span holds. The loop's adds are independent (four accumulators) instead of one serial
    /// add-with-carry chain per 8 bytes: the chain was the cost (Checksum.SumNative, ~8% of the site-to-site
    /// profile, both ends: the sender's segment checksums, the receiver's checks before coalescing).
    /// </summary>
    private static ulong SumVector256(ref byte p, int length)
    {
        Vector256<ulong> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < length; i += 64)
        {
            var v0 = Vector256.LoadUnsafe(ref p, (nuint)i).AsUInt32();
            var v1 = Vector256.LoadUnsafe(ref p, (nuint)(i + 32)).AsUInt32();
            var (l0, h0) = Vector256.Widen(v0);
            var (l1, h1) = Vector256.Widen(v1);
            a0 += l0;
            a1 += h0;
            a2 += l1;
            a3 += h1;
        }
        // Each lane is below 2^25 * 2^32 = 2^57 for a span under 2^31 bytes, so adding the four cannot wrap either.
        var lanes = (a0 + a1) + (a2 + a3);
        ulong sum = 0;
        for (int k = 0; k < Vector256<ulong>.Count; k++) sum = AddCarry(sum, lanes.GetElement(k));
        return sum;
    }

    /// <summary>Adds bytes [i, n) to <paramref name="sum"/>, 8 bytes at a time with end-around carry.</summary>
    private static ulong SumScalar(ref byte p, int i, int n, ulong sum)
    {
        for (; i <= n - 32; i += 32)
        {
            sum = AddCarry(sum, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
            sum = AddCarry(sum, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 8)));
            sum = AddCarry(sum, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 16)));
            sum = AddCarry(sum, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 24)));
        }
        for (; i <= n - 8; i += 8)
            sum = AddCarry(sum, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
        if (i <= n - 4)
        {
            sum = AddCarry(sum, Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i)));
            i += 4;
        }
        if (i <= n - 2)
        {
            sum = AddCarry(sum, Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, i)));
            i += 2;
        }
        if (i < n)
        {
            // The odd byte is the high half of a big-endian word: the low byte of a native word on little-endian.
            ulong last = Unsafe.Add(ref p, i);
            sum = AddCarry(sum, BitConverter.IsLittleEndian ? last : last << 8);
        }
        return sum;
    }

    /// <summary>The scalar loop alone (tests compare the vector path against it).</summary>
    internal static ushort SumScalarForTests(ReadOnlySpan<byte> data)
    {
        ushort folded = Fold(SumScalar(ref MemoryMarshal.GetReference(data), 0, data.Length, 0));
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(folded) : folded;
    }

    /// <summary>Folds a 64-bit one's complement sum to 16 bits (native word order).</summary>
    private static ushort Fold(ulong sum)
    {
        ulong s = (sum & 0xFFFFFFFF) + (sum >> 32);
        s = (s & 0xFFFFFFFF) + (s >> 32);
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return (ushort)s;
    }
}
