using System.Buffers.Binary;

namespace WgEngine.Tun;

/// <summary>
/// The struct virtio_net_hdr a TUN opened with IFF_VNET_HDR puts before every packet it returns from
/// read(2) and expects before every packet given to write(2). Layout and constants are the kernel's
/// (include/uapi/linux/virtio_net.h): u8 flags, u8 gso_type, then le16 hdr_len, gso_size, csum_start,
/// csum_offset - 10 bytes. A TUN uses the legacy (native-endian) format unless TUNSETVNETLE/BE is set;
/// we set neither, and the platforms we run on (x86-64, arm64) are little-endian.
/// </summary>
internal readonly struct VirtioNetHeader
{
    /// <summary>sizeof(struct virtio_net_hdr): the TUN's default vnet header size (TUNSETVNETHDRSZ not used).</summary>
    public const int Size = 10;

    /// <summary>VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at csum_start + csum_offset holds only the
    /// pseudo-header sum; the sum from csum_start to the end must still be folded in.</summary>
    public const byte FlagNeedsCsum = 1;
    /// <summary>VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified (reads only; informational).</summary>
    public const byte FlagDataValid = 2;

    // gso_type values (virtio_net.h).
    public const byte GsoNone = 0, GsoTcpV4 = 1, GsoUdp = 3, GsoTcpV6 = 4, GsoUdpL4 = 5;
    /// <summary>VIRTIO_NET_HDR_GSO_ECN: ORed into gso_type when the TCP stream uses ECN (CWR on the first segment only).</summary>
    public const byte GsoEcn = 0x80;

    public byte Flags { get; init; }
    public byte GsoType { get; init; }
    public ushort HdrLen { get; init; }
    public ushort GsoSize { get; init; }
    public ushort CsumStart { get; init; }
    public ushort CsumOffset { get; init; }

    public bool NeedsCsum => (Flags & FlagNeedsCsum) != 0;
    /// <summary>The GSO kind without the ECN bit.</summary>
    public byte Gso => (byte)(GsoType & ~GsoEcn);

    public static VirtioNetHeader Read(ReadOnlySpan<byte> b) => new()
    {
        Flags = b[0],
        GsoType = b[1],
        HdrLen = BinaryPrimitives.ReadUInt16LittleEndian(b[2..]),
        GsoSize = BinaryPrimitives.ReadUInt16LittleEndian(b[4..]),
        CsumStart = BinaryPrimitives.ReadUInt16LittleEndian(b[6..]),
        CsumOffset = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]),
    };

    public void Write(Span<byte> b)
    {
        b[0] = Flags;
        b[1] = GsoType;
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], HdrLen);
        BinaryPrimitives.WriteUInt16LittleEndian(b[4..], GsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(b[6..], CsumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], CsumOffset);
    }
}
