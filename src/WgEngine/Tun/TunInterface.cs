using System.Net;
using Microsoft.Win32.SafeHandles;
using WgEngine.Net;

namespace WgEngine.Tun;

/// <summary>
/// A Linux TUN interface (IFF_TUN | IFF_NO_PI: every read and write is one IP packet, with IFF_VNET_HDR
/// and offloads a virtio_net_hdr before it and up to 64 KiB long when reads are TSO/USO super-packets), created and
/// configured in the calling thread's network namespace: MTU, addresses, link up. It is not persistent,
/// so closing the descriptor (Dispose) removes the interface, and so does a failure half way through.
/// </summary>
internal sealed unsafe class TunInterface : IDisposable
{
    private TunInterface(SafeFileHandle fd, string name, int mtu)
    {
        Handle = fd;
        Name = name;
        Mtu = mtu;
    }

    /// <summary>The non-blocking descriptor; reads and writes take a reference (DangerousAddRef) so a
    /// concurrent Dispose cannot close it under them.</summary>
    public SafeFileHandle Handle { get; }
    public string Name { get; }
    public int Mtu { get; }

    /// <summary>The TUN_F_* offloads in force (0: plain IFF_NO_PI, no vnet header).</summary>
    public uint Offloads { get; private init; }
    /// <summary>Every read and write carries a virtio_net_hdr first (IFF_VNET_HDR).</summary>
    public bool VnetHeader => Offloads != 0;

    /// <summary>The offload sets tried in order: all, then without TSO_ECN/USO (USO needs Linux 6.2), then TSO only.</summary>
    private static ReadOnlySpan<uint> OffloadSets =>
    [
        TunNative.TUN_F_CSUM | TunNative.TUN_F_TSO4 | TunNative.TUN_F_TSO6 | TunNative.TUN_F_TSO_ECN | TunNative.TUN_F_USO4 | TunNative.TUN_F_USO6,
        TunNative.TUN_F_CSUM | TunNative.TUN_F_TSO4 | TunNative.TUN_F_TSO6 | TunNative.TUN_F_TSO_ECN,
        TunNative.TUN_F_CSUM | TunNative.TUN_F_TSO4 | TunNative.TUN_F_TSO6,
    ];

    /// <summary>Creates and configures the interface. With <paramref name="offloads"/> it asks for a vnet
    /// header and the largest offload set the kernel accepts; if it accepts none, the interface is made
    /// again without the header (plain packets), before anything is configured on it.</summary>
    /// <param name="offloadSets">Tests: other TUN_F_* sets to try instead of the usual ones.</param>
    public static TunInterface Create(string name, IReadOnlyList<IpPrefix> addresses, int mtu, bool offloads = true, uint[]? offloadSets = null)
    {
        TunErrors.ValidateName(name);
        ArgumentNullException.ThrowIfNull(addresses);
        if (mtu is < 576 or > 65535) throw new ArgumentOutOfRangeException(nameof(mtu), mtu, "MTU must be 576..65535.");

        uint enabled = 0;
        SafeFileHandle? handle = null;
        string actual = name;
        if (offloads)
        {
            (handle, actual) = Open(name, TunNative.IFF_TUN | TunNative.IFF_NO_PI | TunNative.IFF_VNET_HDR);
            int fd = (int)handle.DangerousGetHandle();
            foreach (uint set in offloadSets is null ? OffloadSets : offloadSets)
                if (TunNative.ioctlValue(fd, TunNative.TUNSETOFFLOAD, set) == 0) { enabled = set; break; }
            if (enabled == 0)
            {
                handle.Dispose();   // not persistent: the interface goes too, and the name is free again
                handle = null;
            }
        }
        if (handle is null) (handle, actual) = Open(name, TunNative.IFF_TUN | TunNative.IFF_NO_PI);
        try
        {
            Configure(actual, addresses, mtu);
            return new TunInterface(handle, actual, mtu) { Offloads = enabled };
        }
        catch
        {
            handle.Dispose();   // not persistent: the interface goes with the descriptor
            throw;
        }
    }

    /// <summary>Opens /dev/net/tun and attaches it to a new interface with the given IFF_* flags.</summary>
    private static (SafeFileHandle Handle, string Name) Open(string name, short flags)
    {
        int fd = TunNative.open(TunNative.DevicePath, TunNative.O_RDWR | TunNative.O_NONBLOCK | TunNative.O_CLOEXEC);
        if (fd < 0) throw TunErrors.OpenFailed(TunNative.LastErrno);
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            Span<byte> req = stackalloc byte[TunNative.IfReqSize];
            TunNative.WriteName(req, name);
            WriteInt16(req, flags);
            fixed (byte* p = req)
                if (TunNative.ioctl(fd, TunNative.TUNSETIFF, p) < 0) throw TunErrors.CreateFailed(name, TunNative.LastErrno);
            // The kernel writes back the name it used; with a valid, template-free name it is ours.
            return (handle, TunNative.ReadName(req));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void Configure(string name, IReadOnlyList<IpPrefix> addresses, int mtu)
    {
        int s4 = TunNative.socket(TunNative.AF_INET, TunNative.SOCK_DGRAM | TunNative.SOCK_CLOEXEC, 0);
        if (s4 < 0) throw TunErrors.ConfigFailed(name, "open a control socket", TunNative.LastErrno);
        try
        {
            Span<byte> req = stackalloc byte[TunNative.IfReqSize];
            Request(s4, name, req, TunNative.SIOCSIFMTU, mtu, $"set MTU {mtu}");

            int v4Count = 0;
            foreach (var a in addresses)
            {
                if (!a.IsIPv4) continue;
                // The first IPv4 address is the interface's own; further ones are alias labels (name:N),
                // as ifconfig did, since SIOCSIFADDR on the bare name replaces rather than adds.
                string label = v4Count == 0 ? name : $"{name}:{v4Count}";
                if (label.Length > TunNative.IfNameSize - 1)
                    throw TunErrors.ConfigFailed(name, $"add a second IPv4 address {a} (the alias label '{label}' is too long)", TunNative.EINVAL);
                TunNative.WriteName(req, label);
                TunNative.WriteSockaddrIn(req, a.Address);
                Ioctl(s4, TunNative.SIOCSIFADDR, req, name, $"set address {a}");
                TunNative.WriteSockaddrIn(req, IpPrefix.Mask(IPAddress.Broadcast, a.Bits));
                Ioctl(s4, TunNative.SIOCSIFNETMASK, req, name, $"set the netmask of {a}");
                v4Count++;
            }

            // Up before IPv6 addresses: the kernel keeps an IPv6 address on a down link, but up is the
            // state in which it installs the prefix route at once.
            TunNative.WriteName(req, name);
            Ioctl(s4, TunNative.SIOCGIFFLAGS, req, name, "read the interface flags");
            WriteInt16(req, (short)(ReadInt16(req) | TunNative.IFF_UP));
            Ioctl(s4, TunNative.SIOCSIFFLAGS, req, name, "bring the link up");

            bool anyV6 = false;
            foreach (var a in addresses) anyV6 |= !a.IsIPv4;
            if (anyV6) AddIPv6(s4, name, addresses, req);
        }
        finally
        {
            _ = TunNative.close(s4);
        }
    }

    private static void AddIPv6(int s4, string name, IReadOnlyList<IpPrefix> addresses, Span<byte> req)
    {
        TunNative.WriteName(req, name);
        Ioctl(s4, TunNative.SIOCGIFINDEX, req, name, "read the interface index");
        int ifindex = ReadInt32(req);
        DisableDad(name);
        int s6 = TunNative.socket(TunNative.AF_INET6, TunNative.SOCK_DGRAM | TunNative.SOCK_CLOEXEC, 0);
        if (s6 < 0) throw TunErrors.ConfigFailed(name, "open an IPv6 control socket (is IPv6 disabled?)", TunNative.LastErrno);
        try
        {
            Span<byte> r6 = stackalloc byte[TunNative.In6IfReqSize];
            foreach (var a in addresses)
            {
                if (a.IsIPv4) continue;
                TunNative.WriteIn6IfReq(r6, a.Address, a.Bits, ifindex);
                Ioctl(s6, TunNative.SIOCSIFADDR, r6, name, $"set address {a}");
            }
        }
        finally
        {
            _ = TunNative.close(s6);
        }
    }

    /// <summary>Duplicate address detection would keep the address tentative (unusable) for a second or
    /// more; on a point-to-point TUN there is nobody to collide with. Best effort, as ip's nodad.</summary>
    private static void DisableDad(string name)
    {
        try { File.WriteAllText($"/proc/sys/net/ipv6/conf/{name}/accept_dad", "0"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static void Request(int sock, string name, Span<byte> req, uint request, int value, string what)
    {
        TunNative.WriteName(req, name);
        req[TunNative.IfReqUnion..].Clear();
        System.Runtime.InteropServices.MemoryMarshal.Write(req[TunNative.IfReqUnion..], value);
        Ioctl(sock, request, req, name, what);
    }

    private static void Ioctl(int sock, uint request, Span<byte> req, string name, string what)
    {
        fixed (byte* p = req)
            if (TunNative.ioctl(sock, request, p) < 0) throw TunErrors.ConfigFailed(name, what, TunNative.LastErrno);
    }

    private static void WriteInt16(Span<byte> req, short v)
    {
        req[TunNative.IfReqUnion..].Clear();
        System.Runtime.InteropServices.MemoryMarshal.Write(req[TunNative.IfReqUnion..], v);
    }

    private static short ReadInt16(ReadOnlySpan<byte> req) => System.Runtime.InteropServices.MemoryMarshal.Read<short>(req[TunNative.IfReqUnion..]);
    private static int ReadInt32(ReadOnlySpan<byte> req) => System.Runtime.InteropServices.MemoryMarshal.Read<int>(req[TunNative.IfReqUnion..]);

    public void Dispose() => Handle.Dispose();
}
