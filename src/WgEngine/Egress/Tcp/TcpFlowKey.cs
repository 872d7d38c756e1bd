using System.Buffers.Binary;
using WgEngine.Crypto;

namespace WgEngine.Egress.Tcp;

/// <summary>A flow's identity: the peer it came from and both endpoints as the peer addressed them.</summary>
internal readonly record struct TcpFlowKey(WgKey Peer, UInt128 Source, UInt128 Destination, ushort SourcePort, ushort DestinationPort, byte Version)
{
    public static TcpFlowKey Of(WgKey peer, scoped in TcpSegment seg) =>
        new(peer, Address(seg.Source), Address(seg.Destination), seg.SourcePort, seg.DestinationPort, (byte)seg.Version);

    private static UInt128 Address(ReadOnlySpan<byte> a) =>
        a.Length == 4 ? BinaryPrimitives.ReadUInt32BigEndian(a) : BinaryPrimitives.ReadUInt128BigEndian(a);
}
