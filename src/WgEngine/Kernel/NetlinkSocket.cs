using System.Runtime.InteropServices;
using WgEngine.Contracts;

namespace WgEngine.Kernel;

/// <summary>
/// An AF_NETLINK socket (NETLINK_ROUTE or NETLINK_GENERIC) to the kernel, request/answer only: every
/// request waits for its NLMSG_ERROR ack or its dump's NLMSG_DONE. Not thread-safe (the owner locks).
/// </summary>
internal sealed class NetlinkSocket : IDisposable
{
    public const int Route = 0, Generic = 16;
    private const int AfNetlink = 16, SockRaw = 3, SockCloexec = 0x80000, SolSocket = 1, SoRcvtimeo = 20;
    private readonly int _fd;
    private readonly byte[] _rx = new byte[64 * 1024];
    private uint _seq = (uint)Environment.TickCount;

    public NetlinkSocket(int protocol)
    {
        _fd = socket(AfNetlink, SockRaw | SockCloexec, protocol);
        if (_fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new WgException(WgErrorKind.ResourceUnavailable, "KernelNetlinkUnavailable", $"Cannot open a netlink socket (errno {errno}); the kernel backend needs Linux.");
        }
        // A lost answer must not hang the caller: 10 s receive timeout (struct timeval).
        long[] tv = [10, 0];
        if (setsockopt(_fd, SolSocket, SoRcvtimeo, tv, 16) != 0)
        {
            _ = close(_fd);
            throw new WgException(WgErrorKind.ResourceUnavailable, "KernelNetlinkUnavailable", $"Cannot set the netlink socket's timeout (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    public uint NextSeq() => ++_seq;

    /// <summary>Builds a request with the next sequence number, sends it and waits for its answer.</summary>
    public int Ask(Func<uint, byte[]> build, List<NetlinkMessage>? answers = null)
    {
        uint seq = NextSeq();
        return Request(build(seq), seq, answers);
    }

    /// <summary>Sends one request and collects its answer: the dump's messages (until NLMSG_DONE) or
    /// nothing for an ack. Returns the kernel's negative errno, or 0.</summary>
    public int Request(byte[] message, uint seq, List<NetlinkMessage>? answers)
    {
        try
        {
            if (send(_fd, message, message.Length, 0) != message.Length)
                throw new WgException(WgErrorKind.ResourceUnavailable, "KernelNetlinkFailed", $"netlink send failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            Array.Clear(message);   // it may carry a private or preshared key
        }
        while (true)
        {
            int n = recv(_fd, _rx, _rx.Length, 0);
            if (n < 0)
                throw new WgException(WgErrorKind.ResourceUnavailable, "KernelNetlinkFailed", $"netlink receive failed (errno {Marshal.GetLastPInvokeError()}).");
            List<NetlinkMessage> msgs;
            try { msgs = NetlinkMessage.Split(_rx.AsMemory(0, n).ToArray()); }
            catch (FormatException e) { throw BadAnswer(e); }
            finally { Array.Clear(_rx, 0, n); }
            foreach (var m in msgs)
            {
                if (m.Seq != seq) continue;                 // a late answer to an earlier request
                try
                {
                    if (m.Type == Netlink.TypeError) return m.ErrorCode();
                    if (m.Type == Netlink.TypeDone) return m.ErrorCode();
                }
                catch (FormatException e) { throw BadAnswer(e); }
                answers?.Add(m);   // a dump part, or the single answer before its ack
            }
        }
    }

    internal static WgException BadAnswer(Exception e) =>
        new(WgErrorKind.InvalidOperation, "KernelBadAnswer", $"The kernel sent a netlink answer that does not parse: {e.Message}", e);

    public void Dispose() => _ = close(_fd);

    [DllImport("libc", SetLastError = true)] private static extern int socket(int domain, int type, int protocol);
    [DllImport("libc", SetLastError = true)] private static extern int setsockopt(int fd, int level, int name, long[] value, int len);
    [DllImport("libc", SetLastError = true)] private static extern int send(int fd, byte[] buf, nint len, int flags);
    [DllImport("libc", SetLastError = true)] private static extern int recv(int fd, byte[] buf, nint len, int flags);
    [DllImport("libc")] private static extern int close(int fd);
    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)] internal static extern uint if_nametoindex(string name);
}
