using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace WgEngine.Egress;

/// <summary>
/// Reads and patches the port and address of a native sockaddr_in / sockaddr_in6 held in a
/// <see cref="SocketAddress"/>, so that sends and receives need no IPEndPoint per datagram.
/// Offsets are the same on Linux, Windows and the BSDs: port at 2, IPv4 address at 4, IPv6 address at 8.
/// </summary>
internal static class SocketAddressBytes
{
    private const int PortOffset = 2, V4Offset = 4, V6Offset = 8;

    /// <summary>A socket address of the family, to be patched per send or filled by a receive.</summary>
    public static SocketAddress Create(bool ipv4) =>
        new IPEndPoint(ipv4 ? IPAddress.Any : IPAddress.IPv6Any, 0).Serialize();

    public static void Set(SocketAddress sa, ReadOnlySpan<byte> address, ushort port)
    {
        var b = sa.Buffer.Span;
        BinaryPrimitives.WriteUInt16BigEndian(b.Slice(PortOffset), port);
        address.CopyTo(b.Slice(address.Length == 4 ? V4Offset : V6Offset));
    }

    public static ushort Port(SocketAddress sa) => BinaryPrimitives.ReadUInt16BigEndian(sa.Buffer.Span.Slice(PortOffset));

    /// <summary>The address bytes (4 or 16, by the socket's family).</summary>
    public static ReadOnlySpan<byte> Address(SocketAddress sa) =>
        sa.Family == AddressFamily.InterNetwork ? sa.Buffer.Span.Slice(V4Offset, 4) : sa.Buffer.Span.Slice(V6Offset, 16);
}
