using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Net;

namespace WgEngine.Tun;

/// <summary>
/// Egress through a Linux TUN interface: the peers' packets are written to it, so the host's routing,
/// firewall and NAT take over; what the host routes into it (replies, or traffic to the peers' networks)
/// is read back on one dedicated thread and handed to the tunnel through an <see cref="IPacketSink"/>
/// (with offloads, a read may be a TCP/UDP super-packet that <see cref="TunSegmenter"/> cuts up first).
/// The reader drains the non-blocking descriptor until EAGAIN, then sleeps in poll(2) on it and on an
/// eventfd that Dispose signals. No allocation per packet either way.
/// </summary>
internal sealed unsafe class TunEgress : IBatchEgress, IDisposable
{
    /// <summary>Largest read: a vnet header and an IP packet, which cannot be larger than 64 KiB (also a
    /// TSO/USO super-packet).</summary>
    private const int ReadBufferSize = VirtioNetHeader.Size + 65536;

    /// <summary>Environment variable that turns the offloads off by default (value 0, off or false), for
    /// comparisons and as an escape hatch; <see cref="Create"/>'s offloads argument overrides it.</summary>
    public const string OffloadEnvironmentVariable = "WIREGUARDGATEWAY_TUN_OFFLOAD";

    private readonly TunInterface _tun;
    private readonly IPacketSink _sink;
    private readonly int _wakeFd;
    private readonly Thread _reader;
    private int _disposed;
    private long _readerAllocated;

    /// <summary>Bytes the reader thread has allocated so far, as of its last drained batch (tests: none per packet).</summary>
    internal long ReaderAllocatedBytes => Volatile.Read(ref _readerAllocated);

    private TunEgress(TunInterface tun, IPacketSink sink, int wakeFd)
    {
        _tun = tun;
        _sink = sink;
        _wakeFd = wakeFd;
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = $"tun-read {tun.Name}" };
    }

    /// <summary>
    /// Creates the TUN interface <paramref name="name"/> (at most 15 bytes) in the calling thread's network
    /// namespace with the given addresses and MTU, link up, and starts reading it into <paramref name="sink"/>.
    /// With <paramref name="offloads"/> (default: on unless <see cref="OffloadEnvironmentVariable"/> says
    /// off) the TUN takes TCP/UDP super-packets and partial checksums, which the reader segments and
    /// completes (<see cref="Offloads"/>: what the kernel accepted; 0 when it accepted none).
    /// Throws WgException TunPermissionDenied (no CAP_NET_ADMIN), TunNotAvailable (no /dev/net/tun),
    /// TunNameInUse, InvalidTunName or TunConfigFailed; on failure nothing is left behind.
    /// </summary>
    public static TunEgress Create(string name, IReadOnlyList<IpPrefix> addresses, int mtu, IPacketSink sink, bool? offloads = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var tun = TunInterface.Create(name, addresses, mtu, offloads ?? OffloadsByDefault());
        int wake = TunNative.eventfd(0, TunNative.EFD_CLOEXEC | TunNative.EFD_NONBLOCK);
        if (wake < 0)
        {
            int errno = TunNative.LastErrno;
            tun.Dispose();
            throw TunErrors.ConfigFailed(name, "create the reader's wake-up eventfd", errno);
        }
        var egress = new TunEgress(tun, sink, wake);
        egress._reader.Start();
        return egress;
    }

    public string InterfaceName => _tun.Name;
    public int Mtu => _tun.Mtu;
    public TunCounters Counters { get; } = new();
    /// <summary>The TUN_F_* offload flags in force (if_tun.h); 0: plain packets, no vnet header.</summary>
    public uint Offloads => _tun.Offloads;

    private static bool OffloadsByDefault() =>
        Environment.GetEnvironmentVariable(OffloadEnvironmentVariable)?.Trim().ToLowerInvariant() is not ("0" or "off" or "false" or "no");

    /// <summary>Writes one peer packet to the TUN (a crypto worker's thread; several may call at once:
    /// each write(2) is one whole packet).</summary>
    public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet)
    {
        fixed (byte* p = packet)
        {
            if (_tun.VnetHeader)
            {
                // An all-zero virtio_net_hdr: GSO_NONE, no flags - the packet's checksums are complete.
                byte* vnet = stackalloc byte[VirtioNetHeader.Size];
                new Span<byte>(vnet, VirtioNetHeader.Size).Clear();
                var iov = stackalloc TunNative.IoVec[2];
                iov[0] = new TunNative.IoVec { Base = vnet, Length = VirtioNetHeader.Size };
                iov[1] = new TunNative.IoVec { Base = p, Length = (nuint)packet.Length };
                Write(iov, 2, packet.Length, 1);
            }
            else
            {
                var iov = new TunNative.IoVec { Base = p, Length = (nuint)packet.Length };
                Write(&iov, 1, packet.Length, 1);
            }
        }
    }

    /// <summary>A batch collector for a crypto worker: coalesces into super-packets when the TUN takes a
    /// vnet header (and <see cref="CoalescingEnabled"/>), else writes each packet as it comes.</summary>
    public IEgressBatch CreateBatch() => new TunWriteBatch(this);

    /// <summary>Super-packets are written: a vnet header is in use, and no write of one was refused.</summary>
    internal bool CoalescingEnabled => _tun.VnetHeader && Volatile.Read(ref _coalescingRefused) == 0;
    /// <summary>The kernel took TCP super-packets; it takes UDP ones when it accepted USO for reads (Linux 6.2).</summary>
    internal bool CoalesceUdp => (Offloads & (TunNative.TUN_F_USO4 | TunNative.TUN_F_USO6)) == (TunNative.TUN_F_USO4 | TunNative.TUN_F_USO6);
    private int _coalescingRefused;

    /// <summary>Tests: an errno that super-packet writes fail with instead of being written (0: none), to
    /// drive the fallback; the kernel refuses only what we never build.</summary>
    internal int SuperPacketFault { get; set; }

    /// <summary>The kernel refused a super-packet (EINVAL): coalescing stays off for this egress.</summary>
    internal void RefuseCoalescing()
    {
        Interlocked.Increment(ref Counters.coalesceFallbacks);
        Volatile.Write(ref _coalescingRefused, 1);
    }

    /// <summary>One writev(2) of a whole frame (vnet header counted in <paramref name="iov"/>, not in
    /// <paramref name="ipLength"/>) carrying <paramref name="packets"/> peer packets. Returns 0 or the
    /// errno of a failed or short write, which is counted unless it is EINVAL for a super-packet (the
    /// caller falls back).</summary>
    internal int Write(TunNative.IoVec* iov, int iovCount, int ipLength, int packets)
    {
        var handle = _tun.Handle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            nint n = TunNative.writev((int)handle.DangerousGetHandle(), iov, iovCount);
            int errno = n < 0 ? TunNative.LastErrno : TunNative.EINVAL;
            if (_tun.VnetHeader) n -= VirtioNetHeader.Size;
            if (n == ipLength)
            {
                Interlocked.Add(ref Counters.toHostPackets, packets);
                Interlocked.Add(ref Counters.toHostBytes, n);
                return 0;
            }
            if (packets == 1 || errno != TunNative.EINVAL) Interlocked.Increment(ref Counters.writeErrors);   // e.g. a malformed packet the kernel refuses
            return errno;
        }
        catch (ObjectDisposedException)
        {
            Interlocked.Increment(ref Counters.writeErrors);        // a packet racing Dispose
            return TunNative.EBADF;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    private void ReadLoop()
    {
        var handle = _tun.Handle;
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            int fd = (int)handle.DangerousGetHandle();
            var buffer = GC.AllocateUninitializedArray<byte>(ReadBufferSize, pinned: true);
            var fds = stackalloc TunNative.PollFd[2];
            fds[0] = new TunNative.PollFd { Fd = fd, Events = TunNative.POLLIN };
            fds[1] = new TunNative.PollFd { Fd = _wakeFd, Events = TunNative.POLLIN };
            fixed (byte* buf = buffer)
            {
                while (Volatile.Read(ref _disposed) == 0)
                {
                    // What one drain reads goes to the peers as a batch, sent before poll blocks.
                    bool batch = _sink.BeginBatch();
                    try { if (!Drain(fd, buf, buffer)) return; }
                    finally { if (batch) _sink.EndBatch(); }
                    Volatile.Write(ref _readerAllocated, GC.GetAllocatedBytesForCurrentThread());
                    fds[0].Revents = fds[1].Revents = 0;
                    if (TunNative.poll(fds, 2, -1) < 0 && TunNative.LastErrno != TunNative.EINTR) return;
                    if (fds[1].Revents != 0) return;                    // Dispose
                }
            }
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>Reads packets until the queue is empty; false when the descriptor is dead.</summary>
    private bool Drain(int fd, byte* buf, byte[] buffer)
    {
        while (true)
        {
            nint n = TunNative.read(fd, buf, ReadBufferSize);
            if (n > 0)
            {
                // Counters: single writer, this thread. With a vnet header the segmenter counts.
                if (_tun.VnetHeader) TunSegmenter.Forward(buffer.AsSpan(0, (int)n), _sink, Counters);
                else
                {
                    Counters.fromHostPackets++;
                    Counters.fromHostBytes += n;
                    if (!_sink.SendPacket(buffer.AsSpan(0, (int)n))) Counters.noPeer++;
                }
                continue;
            }
            if (n == 0) return false;
            int errno = TunNative.LastErrno;
            if (errno == TunNative.EAGAIN) return true;
            if (errno == TunNative.EINTR) continue;
            Counters.readErrors++;
            return errno is not (TunNative.EBADF or TunNative.EIO or TunNative.EINVAL);
        }
    }

    /// <summary>Stops the reader and closes the descriptor, which removes the interface.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        ulong one = 1;
        TunNative.write(_wakeFd, (byte*)&one, sizeof(ulong));
        if (Thread.CurrentThread != _reader && _reader.IsAlive) _reader.Join();
        _ = TunNative.close(_wakeFd);   // nothing to do about a failed close while disposing
        _tun.Dispose();
    }
}

/// <summary>What the TUN egress moved and lost. "ToHost": peer packets written to the TUN;
/// "FromHost": packets the host routed into the TUN, for the peers (after segmentation: what the peers get).</summary>
internal sealed class TunCounters
{
    internal long toHostPackets, toHostBytes, fromHostPackets, fromHostBytes, writeErrors, readErrors, noPeer, gsoReads, malformed,
        coalescedWrites, coalescedPackets, coalesceFallbacks, checksumsLeftToKernel;

    public long ToHostPackets => Volatile.Read(ref toHostPackets);
    public long ToHostBytes => Volatile.Read(ref toHostBytes);
    public long FromHostPackets => Volatile.Read(ref fromHostPackets);
    public long FromHostBytes => Volatile.Read(ref fromHostBytes);
    /// <summary>Peer packets the kernel refused (malformed) or that raced the shutdown.</summary>
    public long WriteErrors => Volatile.Read(ref writeErrors);
    public long ReadErrors => Volatile.Read(ref readErrors);
    /// <summary>Packets the host sent into the TUN for an address no peer owns (dropped).</summary>
    public long NoPeer => Volatile.Read(ref noPeer);
    /// <summary>Reads that were TCP/UDP super-packets (offloads on), each cut into FromHost packets.</summary>
    public long GsoReads => Volatile.Read(ref gsoReads);
    /// <summary>Reads whose vnet header did not match the packet (the kernel never sends them): dropped.</summary>
    public long Malformed => Volatile.Read(ref malformed);
    /// <summary>TCP/UDP super-packets written (userspace GRO of peer packets, offloads on).</summary>
    public long CoalescedWrites => Volatile.Read(ref coalescedWrites);
    /// <summary>Peer packets that went out inside those super-packets (also counted in ToHostPackets).</summary>
    public long CoalescedPackets => Volatile.Read(ref coalescedPackets);
    /// <summary>Super-packets the kernel refused (EINVAL): their packets were written one by one and coalescing turned off.</summary>
    public long CoalesceFallbacks => Volatile.Read(ref coalesceFallbacks);
    /// <summary>Peer packets that could have been coalesced but were written alone, whose transport checksum was
    /// therefore not summed in userspace: written without NEEDS_CSUM, the kernel verifies it (TunCoalescer).</summary>
    public long ChecksumsLeftToKernel => Volatile.Read(ref checksumsLeftToKernel);

    /// <summary>Every counter by its name.</summary>
    public Dictionary<string, long> Snapshot() => new()
    {
        [nameof(ToHostPackets)] = ToHostPackets, [nameof(ToHostBytes)] = ToHostBytes, [nameof(FromHostPackets)] = FromHostPackets,
        [nameof(FromHostBytes)] = FromHostBytes, [nameof(WriteErrors)] = WriteErrors, [nameof(ReadErrors)] = ReadErrors,
        [nameof(NoPeer)] = NoPeer, [nameof(GsoReads)] = GsoReads, [nameof(Malformed)] = Malformed,
        [nameof(CoalescedWrites)] = CoalescedWrites, [nameof(CoalescedPackets)] = CoalescedPackets, [nameof(CoalesceFallbacks)] = CoalesceFallbacks,
        [nameof(ChecksumsLeftToKernel)] = ChecksumsLeftToKernel,
    };
}
