using System.Net;
using System.Runtime.InteropServices;
using static WgEngine.Conn.LinuxBatchIo;

namespace WgEngine.Conn;

/// <summary>
/// UDP GRO on receive (Linux 5.0+): with UDP_GRO set, the kernel may hand one recvmmsg message holding
/// several datagrams of one sender back to back (all gso_size bytes, the last possibly shorter), and says
/// so in a UDP_GRO control message. On loopback and veth a GSO send stays one such message; on a NIC,
/// GRO coalesces a burst. The device wants one WireGuard message per buffer at offset 0, so a coalesced
/// message is split here: received into a 64 KB slot owned by the bind, each segment copied into the
/// caller's next buffer (one memcpy per datagram; see docs/performance.md "Batching" for its cost).
/// Segments that do not fit the caller's batch wait in the slots for the next call, which returns them
/// without a system call. The fallback (option refused, not Linux, batching off) is the plain path.
/// </summary>
internal sealed unsafe partial class UdpBind
{
    /// <summary>Largest message the kernel coalesces (an IP datagram's 64 KB).</summary>
    private const int GroSlotSize = 65536;
    /// <summary>Messages one GRO recvmmsg takes: each needs its own 64 KB slot (1 MB per bind, allocated on first use).</summary>
    private const int GroMessages = 16;
    /// <summary>Control room per message: a UDP_GRO cmsg is 24 bytes; kept larger so an unexpected extra cmsg does not truncate it.</summary>
    private const int GroControlRoom = 64;

    private volatile bool _gro;          // UDP_GRO currently set on the socket
    private volatile bool _groReceive;   // the receive path parses cmsgs (set once GRO was ever on: queued coalesced data may remain)
    private GroState? _groState;
    private long _coalescedDatagrams;

    /// <summary>
    /// Receive-side UDP GRO (UDP_GRO). On by default where the kernel accepts it with native batching;
    /// setting it true on a kernel that refuses the option leaves it false. Off: the kernel splits
    /// coalesced traffic itself and each recvmmsg message is one datagram. Switching it off on a running
    /// socket loses what was already queued coalesced (the kernel then omits the segment size).
    /// </summary>
    public bool UdpGro
    {
        get => _gro;
        set
        {
            if (value == _gro) return;
            if (value && !NativeBatching) return;
            // The splitting receive path first: a receiver already blocked in the plain recvmmsg may still
            // get one coalesced message truncated (switching on at run time only; the constructor does it
            // before any receive).
            bool wasReceiving = _groReceive;
            if (value) _groReceive = true;
            if (!TrySetGro(value))
            {
                _groReceive = wasReceiving;
                return;
            }
            _gro = value;
        }
    }

    /// <summary>Datagrams that arrived inside a coalesced (multi-segment) message and were split here.
    /// Zero means GRO never merged anything for this socket.</summary>
    public long CoalescedDatagrams => Interlocked.Read(ref _coalescedDatagrams);

    private bool TrySetGro(bool on)
    {
        if (_closed) return false;
        try
        {
            Span<byte> value = stackalloc byte[4];
            BitConverter.TryWriteBytes(value, on ? 1 : 0);
            _socket.SetRawSocketOption(SolUdp, UdpGroOption, value);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;   // ENOPROTOOPT (kernel before 5.0) or EINVAL: stay on the plain path
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>The bind-owned receive area of the GRO path and the segments of the last call not yet handed out.</summary>
    private sealed class GroState
    {
        public readonly byte[] Slots = GC.AllocateUninitializedArray<byte>(GroMessages * GroSlotSize, pinned: true);
        public readonly byte[] Names = GC.AllocateUninitializedArray<byte>(GroMessages * AddressRoom, pinned: true);
        public readonly int[] NameLength = new int[GroMessages];
        public readonly int[] Length = new int[GroMessages];
        public readonly int[] Segment = new int[GroMessages];   // segment size; == Length for a single datagram
        public readonly int[] Offset = new int[GroMessages];    // next byte to hand out
        public int Next, End;                                   // messages [Next, End) still hold data
    }

    private GroState GetGroState() =>
        _groState ?? Interlocked.CompareExchange(ref _groState, new GroState(), null) ?? _groState;

    private int ReceiveGro(ReadOnlySpan<Memory<byte>> buffers, ReadOnlySpan<SocketAddress> from, Span<int> lengths)
    {
        int capacity = Math.Min(Math.Min(buffers.Length, from.Length), lengths.Length);
        var state = GetGroState();
        lock (state)
        {
            if (state.Next == state.End)
            {
                int r = Fill(state, Math.Min(capacity, GroMessages));
                if (r <= 0) return r;
            }
            int n = 0;
            long split = 0;
            while (n < capacity && state.Next < state.End)
            {
                if (TakeOne(state, buffers[n].Span, from[n], out lengths[n])) split++;
                n++;
            }
            if (split > 0) Interlocked.Add(ref _coalescedDatagrams, split);
            return n;
        }
    }

    /// <summary>The single-datagram call on a GRO socket: one segment per call, still split correctly.
    /// Returns -1 once closed, 0 when the native call is unavailable.</summary>
    private int ReceiveOneGro(Span<byte> buffer, SocketAddress from)
    {
        var state = GetGroState();
        lock (state)
        {
            if (state.Next == state.End)
            {
                int r = Fill(state, GroMessages);
                if (r <= 0) return r == 0 ? -2 : -1;
            }
            if (TakeOne(state, buffer, from, out int length)) Interlocked.Increment(ref _coalescedDatagrams);
            return length;
        }
    }

    /// <summary>One recvmmsg into the slots (blocks for the first message). Returns the message count,
    /// -1 once closed, 0 when the caller should use the managed call instead.</summary>
    private int Fill(GroState state, int count)
    {
        var msgs = stackalloc MMsgHdr[count];
        var iov = stackalloc IoVec[count];
        var control = stackalloc byte[count * GroControlRoom];
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            int fd = (int)_handle.DangerousGetHandle();
            byte* slots = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(state.Slots, 0);
            byte* names = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(state.Names, 0);
            while (true)
            {
                for (int i = 0; i < count; i++)
                {
                    iov[i].Base = slots + (long)i * GroSlotSize;
                    iov[i].Length = GroSlotSize;
                    msgs[i].Header = new MsgHdr
                    {
                        Name = names + i * AddressRoom,
                        NameLength = AddressRoom,
                        Iov = iov + i,
                        IovLength = 1,
                        Control = control + i * GroControlRoom,
                        ControlLength = GroControlRoom,
                    };
                    msgs[i].Length = 0;
                }
                // MSG_WAITFORONE: block for the first message, then take only what is already queued.
                int r = RecvMMsg(fd, msgs, (uint)count, MsgWaitForOne, null);
                if (_closed) return -1;
                if (r > 0)
                {
                    for (int i = 0; i < r; i++)
                    {
                        ref var h = ref msgs[i].Header;
                        int length = (int)msgs[i].Length;
                        int segment = (h.Flags & MsgCTrunc) != 0 ? 0
                            : GroSegmentSize(new ReadOnlySpan<byte>(h.Control, (int)Math.Min(h.ControlLength, (nuint)GroControlRoom)));
                        state.Length[i] = length;
                        state.Segment[i] = segment > 0 && segment < length ? segment : length;
                        state.Offset[i] = 0;
                        state.NameLength[i] = (int)Math.Min(h.NameLength, (uint)AddressRoom);
                    }
                    state.Next = 0;
                    state.End = r;
                    return r;
                }
                if (r == 0) continue;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EIntr || IsTransient(errno)) continue;
                if (errno == ENoSys) MarkMissing();
                return 0;   // EAGAIN or the unexpected: the managed call handles this one
            }
        }
        catch (ObjectDisposedException)
        {
            return -1;
        }
        finally
        {
            if (added) _handle.DangerousRelease();
        }
    }

    /// <summary>Copies the next pending segment (arrival order) into <paramref name="target"/> with its
    /// source. True when it came from a coalesced message.</summary>
    private static bool TakeOne(GroState state, Span<byte> target, SocketAddress from, out int length)
    {
        int m = state.Next;
        int offset = state.Offset[m], total = state.Length[m];
        int size = Math.Min(state.Segment[m], total - offset);
        length = Math.Min(size, target.Length);   // larger than its buffer: truncated, as on the plain path
        state.Slots.AsSpan(m * GroSlotSize + offset, length).CopyTo(target);
        int nameLength = state.NameLength[m];
        state.Names.AsSpan(m * AddressRoom, nameLength).CopyTo(from.Buffer.Span);
        from.Size = nameLength;
        offset += size;
        state.Offset[m] = offset;
        if (offset >= total) state.Next++;   // also moves past an empty datagram (length 0) once handed out
        return state.Segment[m] < total;
    }

    /// <summary>
    /// The segment size from a recvmsg control buffer: the int of a cmsg with level SOL_UDP and type
    /// UDP_GRO (udp_cmsg_recv in net/ipv4/udp.c), or 0 when there is none or the buffer is malformed.
    /// cmsghdr on LP64: size_t cmsg_len (header included), int level, int type, data; each cmsg 8-aligned.
    /// </summary>
    internal static int GroSegmentSize(ReadOnlySpan<byte> control)
    {
        const int Header = 16;
        int at = 0;
        while (control.Length - at >= Header)
        {
            ulong len = MemoryMarshal.Read<ulong>(control[at..]);
            if (len < Header || len > (ulong)(control.Length - at)) return 0;   // malformed: trust nothing after it
            int level = MemoryMarshal.Read<int>(control[(at + 8)..]);
            int type = MemoryMarshal.Read<int>(control[(at + 12)..]);
            if (level == SolUdp && type == UdpGroOption && len >= Header + sizeof(int))
            {
                int size = MemoryMarshal.Read<int>(control[(at + Header)..]);
                return size > 0 ? size : 0;
            }
            at += (int)((len + 7) & ~7UL);
        }
        return 0;
    }
}
