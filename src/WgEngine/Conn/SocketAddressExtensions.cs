using System.Net;

namespace WgEngine.Conn;

internal static class SocketAddressExtensions
{
    /// <summary>
    /// Same address and port. SocketAddress.Equals compares whole underlying buffers, which differ in
    /// length between a receive buffer (sized for IPv6) and an exact copy, so it cannot be used here.
    /// </summary>
    public static bool SameAs(this SocketAddress a, SocketAddress b) =>
        a.Size == b.Size && a.Buffer.Span[..a.Size].SequenceEqual(b.Buffer.Span[..b.Size]);

    /// <summary>An exact-size copy, safe to keep after the source buffer is reused.</summary>
    public static SocketAddress Copy(this SocketAddress a)
    {
        var c = new SocketAddress(a.Family, a.Size);
        a.Buffer.Span[..a.Size].CopyTo(c.Buffer.Span);
        return c;
    }
}
