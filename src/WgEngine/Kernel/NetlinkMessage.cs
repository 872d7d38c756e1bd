using System.Buffers.Binary;
using System.Text;

namespace WgEngine.Kernel;

// Netlink framing, hand-written: NuGet serves no maintained .NET netlink library (checked against
// /work/.library/env/packages/nuget.tsv). Layouts from the kernel's uapi headers: linux/netlink.h
// (nlmsghdr, nlattr, NLA_ALIGNTO 4), linux/genetlink.h (genlmsghdr), linux/rtnetlink.h, linux/if_link.h.
// All fields are host byte order (little-endian on the platforms .NET runs this on).

internal static class Netlink
{
    public const int HeaderSize = 16;          // nlmsghdr: u32 len, u16 type, u16 flags, u32 seq, u32 pid
    public const int AttrHeaderSize = 4;       // nlattr: u16 len, u16 type
    public const ushort FRequest = 0x1, FMulti = 0x2, FAck = 0x4, FDump = 0x300, FReplace = 0x100, FExcl = 0x200, FCreate = 0x400;
    public const ushort TypeError = 2, TypeDone = 3;
    public const ushort NlaFNested = 0x8000;
    public const ushort NlaTypeMask = 0x3FFF;  // ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)
    public static int Align(int n) => (n + 3) & ~3;
}

/// <summary>Builds one netlink message into a fixed-size buffer; every Put reports whether it fitted,
/// and <see cref="Mark"/>/<see cref="Rewind"/> undo a partly written group (used for fragmenting).</summary>
internal sealed class NetlinkWriter
{
    private readonly byte[] _buf;
    private int _len;

    public NetlinkWriter(int capacity, ushort type, ushort flags)
    {
        _buf = new byte[capacity];
        _len = Netlink.HeaderSize;
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(6), flags);
    }

    public int Length => _len;
    public int Mark() => _len;
    public void Rewind(int mark) { _buf.AsSpan(mark, _len - mark).Clear(); _len = mark; }

    /// <summary>Fixed family header after nlmsghdr (genlmsghdr, ifinfomsg, ifaddrmsg).</summary>
    public void PutRaw(ReadOnlySpan<byte> bytes)
    {
        if (!Fits(bytes.Length)) throw new InvalidOperationException("netlink buffer too small for the family header");
        bytes.CopyTo(_buf.AsSpan(_len));
        _len += Netlink.Align(bytes.Length);
    }

    public bool Put(ushort type, ReadOnlySpan<byte> payload)
    {
        int total = Netlink.AttrHeaderSize + payload.Length;
        if (!Fits(total)) return false;
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_len), (ushort)total);
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_len + 2), type);
        payload.CopyTo(_buf.AsSpan(_len + Netlink.AttrHeaderSize));
        _len += Netlink.Align(total);
        return true;
    }

    public bool PutU8(ushort type, byte v) => Put(type, [v]);
    public bool PutU16(ushort type, ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return Put(type, b); }
    public bool PutU32(ushort type, uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return Put(type, b); }

    /// <summary>A NUL-terminated string (NLA_NUL_STRING / NLA_STRING as the kernel's own tools send it).</summary>
    public bool PutString(ushort type, string s)
    {
        Span<byte> b = stackalloc byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, b);
        b[^1] = 0;
        return Put(type, b);
    }

    /// <summary>Opens a nested attribute (NLA_F_NESTED set); -1 when even its header does not fit.</summary>
    public int BeginNest(ushort type)
    {
        if (!Fits(Netlink.AttrHeaderSize)) return -1;
        int at = _len;
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(at + 2), (ushort)(type | Netlink.NlaFNested));
        _len += Netlink.AttrHeaderSize;
        return at;
    }

    public void EndNest(int at) => BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(at), (ushort)(_len - at));

    /// <summary>The finished message (length and sequence number filled in). The caller clears it after sending.</summary>
    public byte[] Finish(uint seq)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buf, (uint)_len);
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(8), seq);
        return _buf[.._len];
    }

    /// <summary>Erases the buffer (it may hold a private or preshared key).</summary>
    public void Clear() => Array.Clear(_buf);

    private bool Fits(int n) => _len + Netlink.Align(n) <= _buf.Length;
}

/// <summary>One received netlink message: its header fields and payload (after nlmsghdr).</summary>
internal readonly record struct NetlinkMessage(ushort Type, ushort Flags, uint Seq, ReadOnlyMemory<byte> Payload)
{
    /// <summary>Splits a receive buffer into messages; FormatException for a length that does not add up.</summary>
    public static List<NetlinkMessage> Split(ReadOnlyMemory<byte> data)
    {
        var list = new List<NetlinkMessage>();
        int off = 0;
        while (off < data.Length)
        {
            var s = data.Span[off..];
            if (s.Length < Netlink.HeaderSize) throw new FormatException($"truncated netlink header ({s.Length} bytes)");
            int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(s);
            if (len < Netlink.HeaderSize || len > s.Length) throw new FormatException($"netlink message length {len} outside 16-{s.Length}");
            list.Add(new NetlinkMessage(BinaryPrimitives.ReadUInt16LittleEndian(s[4..]), BinaryPrimitives.ReadUInt16LittleEndian(s[6..]),
                BinaryPrimitives.ReadUInt32LittleEndian(s[8..]), data.Slice(off + Netlink.HeaderSize, len - Netlink.HeaderSize)));
            off += Math.Min(Netlink.Align(len), data.Length - off);
        }
        return list;
    }

    /// <summary>The errno of an NLMSG_ERROR / NLMSG_DONE (0 = success / ack).</summary>
    public int ErrorCode()
    {
        if (Payload.Length < 4) throw new FormatException("truncated netlink error/done message");
        return BinaryPrimitives.ReadInt32LittleEndian(Payload.Span);
    }
}

/// <summary>Walks the attributes of a payload; every length is checked against what is left.</summary>
internal ref struct NetlinkAttrReader
{
    private ReadOnlySpan<byte> _rest;

    public NetlinkAttrReader(ReadOnlySpan<byte> attrs) { _rest = attrs; Type = 0; Value = default; }

    public ushort Type { get; private set; }
    public ReadOnlySpan<byte> Value { get; private set; }

    public bool Next()
    {
        if (_rest.Length == 0) return false;
        if (_rest.Length < Netlink.AttrHeaderSize) throw new FormatException($"truncated attribute header ({_rest.Length} bytes)");
        int len = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
        if (len < Netlink.AttrHeaderSize || len > _rest.Length) throw new FormatException($"attribute length {len} outside 4-{_rest.Length}");
        Type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]) & Netlink.NlaTypeMask);
        Value = _rest[Netlink.AttrHeaderSize..len];
        _rest = _rest[Math.Min(Netlink.Align(len), _rest.Length)..];
        return true;
    }

    public readonly ushort U16() => Value.Length == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(Value) : throw Bad(2);
    public readonly uint U32() => Value.Length == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Value) : throw Bad(4);
    public readonly ulong U64() => Value.Length == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(Value) : throw Bad(8);
    public readonly byte U8() => Value.Length == 1 ? Value[0] : throw Bad(1);
    public readonly string Str() { var v = Value; int z = v.IndexOf((byte)0); return Encoding.UTF8.GetString(z >= 0 ? v[..z] : v); }
    private readonly FormatException Bad(int want) => new($"attribute {Type}: {Value.Length} bytes, expected {want}");
}
