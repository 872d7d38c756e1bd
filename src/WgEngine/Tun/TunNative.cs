using System.Net;
using System.Runtime.InteropServices;

namespace WgEngine.Tun;

/// <summary>
/// Linux system calls and kernel ABI constants for a TUN device. Numbers and layouts are the kernel's
/// (include/uapi/linux/if_tun.h, if.h, sockios.h, ipv6.h, asm-generic/errno-base.h); ioctl request
/// numbers are the same on x86-64 and arm64.
/// </summary>
internal static unsafe class TunNative
{
    public const string DevicePath = "/dev/net/tun";

    // open(2) flags
    public const int O_RDWR = 0x2, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;

    // if_tun.h: TUNSETIFF = _IOW('T', 202, int); TUNSETOFFLOAD = _IOW('T', 208, unsigned int).
    public const uint TUNSETIFF = 0x400454ca;
    /// <summary>Which offloads the reader can take (TUN_F_*): what the kernel may hand us unsegmented.</summary>
    public const uint TUNSETOFFLOAD = 0x400454d0;
    public const short IFF_TUN = 0x0001, IFF_NO_PI = 0x1000;
    /// <summary>A struct virtio_net_hdr before every packet read and written (VirtioNetHeader).</summary>
    public const short IFF_VNET_HDR = 0x4000;
    // if_tun.h TUNSETOFFLOAD flags: partial checksums, TCP segmentation (v4, v6, with ECN), UDP segmentation (v4, v6; Linux 6.2+).
    public const uint TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04, TUN_F_TSO_ECN = 0x08,
        TUN_F_USO4 = 0x20, TUN_F_USO6 = 0x40;

    // sockios.h
    public const uint SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914, SIOCSIFADDR = 0x8916,
        SIOCSIFNETMASK = 0x891c, SIOCGIFMTU = 0x8921, SIOCSIFMTU = 0x8922, SIOCGIFINDEX = 0x8933;
    public const short IFF_UP = 0x1;

    public const int AF_INET = 2, AF_INET6 = 10, SOCK_DGRAM = 2, SOCK_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;
    public const short POLLIN = 0x1;

    // errno
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, EAGAIN = 11,
        EACCES = 13, EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, EAFNOSUPPORT = 97;

    /// <summary>IFNAMSIZ: names are at most 15 bytes plus the terminating NUL.</summary>
    public const int IfNameSize = 16;
    /// <summary>sizeof(struct ifreq): the name, then a union whose largest member is struct ifmap
    /// (24 bytes on LP64, 16 on 32-bit).</summary>
    public static int IfReqSize => IfNameSize + (IntPtr.Size == 8 ? 24 : 16);
    /// <summary>sizeof(struct in6_ifreq): in6_addr (16), u32 prefixlen, int ifindex.</summary>
    public const int In6IfReqSize = 24;
    /// <summary>Offset of the ifreq union (flags, mtu, ifindex, sockaddr).</summary>
    public const int IfReqUnion = IfNameSize;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", SetLastError = true)] public static extern int open(string path, int flags);
    [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] public static extern int ioctl(int fd, nuint request, byte* arg);
    /// <summary>ioctl with an integer argument (TUNSETOFFLOAD takes its flags by value, not by pointer).</summary>
    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)] public static extern int ioctlValue(int fd, nuint request, nuint arg);
    [DllImport("libc", SetLastError = true)] public static extern nint read(int fd, byte* buf, nuint count);
    [DllImport("libc", SetLastError = true)] public static extern nint write(int fd, byte* buf, nuint count);
    [DllImport("libc", SetLastError = true)] public static extern nint writev(int fd, IoVec* iov, int iovcnt);
    [DllImport("libc", SetLastError = true)] public static extern int poll(PollFd* fds, nuint nfds, int timeout);
    [DllImport("libc", SetLastError = true)] public static extern int eventfd(uint initval, int flags);
    [DllImport("libc", SetLastError = true)] public static extern int socket(int domain, int type, int protocol);

    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>Writes the NUL-terminated interface name into the first 16 bytes of an ifreq.</summary>
    public static void WriteName(Span<byte> ifreq, string name)
    {
        ifreq[..IfNameSize].Clear();
        System.Text.Encoding.UTF8.GetBytes(name, ifreq);
    }

    public static string ReadName(ReadOnlySpan<byte> ifreq)
    {
        var n = ifreq[..IfNameSize];
        int end = n.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? n : n[..end]);
    }

    /// <summary>A struct sockaddr_in for an IPv4 address at the ifreq union (family in host order, port 0).</summary>
    public static void WriteSockaddrIn(Span<byte> ifreq, IPAddress v4)
    {
        var sa = ifreq.Slice(IfReqUnion, 16);
        sa.Clear();
        MemoryMarshal.Write(sa, (ushort)AF_INET);   // sa_family is in host byte order
        v4.TryWriteBytes(sa.Slice(4, 4), out _);
    }

    /// <summary>A struct in6_ifreq: address, prefix length, interface index.</summary>
    public static void WriteIn6IfReq(Span<byte> req, IPAddress v6, int prefixLength, int ifindex)
    {
        req[..In6IfReqSize].Clear();
        v6.TryWriteBytes(req[..16], out _);
        MemoryMarshal.Write(req.Slice(16, 4), (uint)prefixLength);
        MemoryMarshal.Write(req.Slice(20, 4), ifindex);
    }
}
