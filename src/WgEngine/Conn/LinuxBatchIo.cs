using System.Runtime.InteropServices;

namespace WgEngine.Conn;

/// <summary>
/// recvmmsg/sendmmsg through libc: many datagrams per system call. Struct layouts are the LP64
/// Linux ones (x86-64, arm64) from the man pages recvmmsg(2), sendmmsg(2), recvmsg(2); the
/// constants from asm-generic/errno.h and linux/socket.h. Callers keep all structs on the stack.
/// </summary>
internal static unsafe partial class LinuxBatchIo
{
    /// <summary>Linux on a 64-bit ABI whose structs match the ones below; elsewhere the managed path is used.</summary>
    public static bool Supported => OperatingSystem.IsLinux() && IntPtr.Size == 8 && !s_missing;

    // Set once the kernel answers ENOSYS: no point asking again.
    private static volatile bool s_missing;
    public static void MarkMissing() => s_missing = true;

    /// <summary>Room for the largest sockaddr we meet (sockaddr_in6: 28 bytes), kept 8-aligned.</summary>
    public const int AddressRoom = 32;

    public const int MsgTrunc = 0x20, MsgCTrunc = 0x08;
    public const int MsgWaitForOne = 0x10000;

    // UDP generic segmentation offload (linux/udp.h): one send of equal-size segments, split by the kernel.
    public const int SolUdp = 17, UdpSegment = 103, MaxSegments = 64, MaxGsoBytes = 65000;
    /// <summary>CMSG_SPACE(sizeof(ushort)) and CMSG_LEN(sizeof(ushort)) on LP64: a 16-byte cmsghdr + data, 8-aligned.</summary>
    public const int GsoControlSpace = 24, GsoControlLength = 18;
    // UDP generic receive offload (linux/udp.h): the socket accepts coalesced datagrams, a cmsg gives the segment size.
    public const int UdpGroOption = 104;

    public const int EIo = 5, EInval = 22, EOpNotSupp = 95;
    public const int EIntr = 4, EAgain = 11, ENoSys = 38, EMsgSize = 90, ENetUnreach = 101,
        EConnReset = 104, EConnRefused = 111, EHostUnreach = 113, ENoBufs = 105, EPerm = 1;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public byte* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public byte* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;   // bytes received or sent for this message
    }

    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    public static partial int RecvMMsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMMsg(int fd, MMsgHdr* messages, uint count, int flags);

    /// <summary>ICMP-reported errors and congestion that concern one datagram, not the socket.</summary>
    public static bool IsTransient(int errno) => errno is EConnRefused or EHostUnreach or ENetUnreach
        or EConnReset or EMsgSize or ENoBufs or EPerm;
}
