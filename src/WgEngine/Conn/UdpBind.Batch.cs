using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using static WgEngine.Conn.LinuxBatchIo;

namespace WgEngine.Conn;

/// <summary>
/// Batched I/O for <see cref="UdpBind"/>: on Linux one recvmmsg/sendmmsg moves up to
/// <see cref="MaxBatch"/> datagrams; elsewhere, with batching off, or once the kernel says ENOSYS,
/// the single-datagram Socket calls. Sends also use UDP GSO for runs of equal-size datagrams to one
/// destination. Everything native lives on the stack: no allocation per call beyond a per-thread pin
/// table made once.
/// </summary>
internal sealed unsafe partial class UdpBind
{
    /// <summary>Most datagrams one system call moves; larger batches are split.</summary>
    public const int MaxBatch = 64;

    // Pins for the buffers of one call; per thread because workers send concurrently.
    [ThreadStatic] private static MemoryHandle[]? t_pins;

    /// <summary>True while recvmmsg/sendmmsg are in use (Linux, batching asked for, supported by the kernel).</summary>
    public bool NativeBatching => _nativeBatching && Supported;

    public int ReceiveBatch(ReadOnlySpan<Memory<byte>> buffers, ReadOnlySpan<SocketAddress> from, Span<int> lengths)
    {
        if (NativeBatching && !_closed)
        {
            int r = _groReceive ? ReceiveGro(buffers, from, lengths) : ReceiveNative(buffers, from, lengths);
            if (r != 0) return r;   // 0: fall back to the managed call for this one
        }
        int n = Receive(buffers[0].Span, from[0]);
        if (n < 0) return -1;
        lengths[0] = n;
        return 1;
    }

    private int ReceiveNative(ReadOnlySpan<Memory<byte>> buffers, ReadOnlySpan<SocketAddress> from, Span<int> lengths)
    {
        int count = Math.Min(Math.Min(buffers.Length, from.Length), Math.Min(lengths.Length, MaxBatch));
        var msgs = stackalloc MMsgHdr[count];
        var iov = stackalloc IoVec[count];
        var names = stackalloc byte[count * AddressRoom];
        var pins = t_pins ??= new MemoryHandle[MaxBatch];
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);   // the fd stays ours until Release, even if closed meanwhile
            int fd = (int)_handle.DangerousGetHandle();
            for (int i = 0; i < count; i++)
            {
                pins[i] = buffers[i].Pin();
                iov[i].Base = (byte*)pins[i].Pointer;
                iov[i].Length = (nuint)buffers[i].Length;
            }
            while (true)
            {
                for (int i = 0; i < count; i++)
                {
                    msgs[i].Header = new MsgHdr
                    {
                        Name = names + i * AddressRoom,
                        NameLength = (uint)Math.Min(AddressRoom, from[i].Buffer.Length),
                        Iov = iov + i,
                        IovLength = 1,
                    };
                    msgs[i].Length = 0;
                }
                // MSG_WAITFORONE: block for the first datagram, then take only what is already queued.
                int r = RecvMMsg(fd, msgs, (uint)count, MsgWaitForOne, null);
                if (_closed) return -1;
                if (r > 0)
                {
                    for (int i = 0; i < r; i++)
                    {
                        int nameLength = (int)msgs[i].Header.NameLength;
                        new ReadOnlySpan<byte>(names + i * AddressRoom, nameLength).CopyTo(from[i].Buffer.Span);
                        from[i].Size = nameLength;
                        // A datagram larger than its buffer arrives truncated (and later fails authentication).
                        lengths[i] = (int)msgs[i].Length;
                    }
                    return r;
                }
                if (r == 0) continue;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EIntr || IsTransient(errno)) continue;
                if (errno == ENoSys) MarkMissing();
                return 0;   // EAGAIN (a non-blocking fd) or the unexpected: the managed call handles it
            }
        }
        catch (ObjectDisposedException)
        {
            return -1;
        }
        finally
        {
            for (int i = 0; i < count; i++) pins[i].Dispose();
            if (added) _handle.DangerousRelease();
        }
    }

    public int SendBatch(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, ReadOnlySpan<SocketAddress> to, Span<bool> sent)
    {
        int ok = 0;
        for (int start = 0; start < datagrams.Length; start += MaxBatch)
        {
            int count = Math.Min(MaxBatch, datagrams.Length - start);
            ok += NativeBatching
                ? SendNative(datagrams.Slice(start, count), to.Slice(start, count), sent.Slice(start, count))
                : SendEach(datagrams.Slice(start, count), to.Slice(start, count), sent.Slice(start, count));
        }
        return ok;
    }

    private int SendEach(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, ReadOnlySpan<SocketAddress> to, Span<bool> sent)
    {
        int ok = 0;
        for (int i = 0; i < datagrams.Length; i++)
            if (sent[i] = Send(datagrams[i].Span, to[i])) ok++;
        return ok;
    }

    /// <summary>Sends runs of equal-size datagrams to one destination as one UDP GSO send (UDP_SEGMENT),
    /// when native batching is on. Turned off for good after the kernel or route refuses it.</summary>
    public bool UdpSegmentation
    {
        get => _gso && NativeBatching;
        set => _gso = value;
    }
    private volatile bool _gso = true;

    private int SendNative(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, ReadOnlySpan<SocketAddress> to, Span<bool> sent)
    {
        int count = datagrams.Length;
        var msgs = stackalloc MMsgHdr[count];
        var iov = stackalloc IoVec[count];
        var names = stackalloc byte[count * AddressRoom];
        var control = stackalloc byte[count * GsoControlSpace];
        var first = stackalloc int[count + 1];   // message m carries datagrams first[m] .. first[m + 1] - 1
        var pins = t_pins ??= new MemoryHandle[MaxBatch];
        bool gso = UdpSegmentation;
        sent.Clear();
        int ok = 0, messages = 0;
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            int fd = (int)_handle.DangerousGetHandle();
            for (int i = 0; i < count; i++)
            {
                pins[i] = datagrams[i].Pin();
                iov[i].Base = (byte*)pins[i].Pointer;
                iov[i].Length = (nuint)datagrams[i].Length;
            }
            for (int i = 0; i < count; i = first[messages])
            {
                int end = gso ? GsoRunEnd(datagrams, to, i) : i + 1;
                int nameLength = Math.Min(to[i].Size, AddressRoom);
                to[i].Buffer.Span[..nameLength].CopyTo(new Span<byte>(names + messages * AddressRoom, AddressRoom));
                var m = &msgs[messages];
                m->Header = new MsgHdr { Name = names + messages * AddressRoom, NameLength = (uint)nameLength, Iov = iov + i, IovLength = (nuint)(end - i) };
                m->Length = 0;
                if (end - i > 1)
                {
                    // cmsghdr { size_t len; int level; int type; } + the segment size (a u16).
                    byte* c = control + messages * GsoControlSpace;
                    *(nuint*)c = GsoControlLength;
                    *(int*)(c + 8) = SolUdp;
                    *(int*)(c + 12) = UdpSegment;
                    *(ushort*)(c + 16) = (ushort)datagrams[i].Length;
                    m->Header.Control = c;
                    m->Header.ControlLength = GsoControlSpace;
                }
                first[messages] = i;
                first[++messages] = end;
            }
            int next = 0;
            while (next < messages)
            {
                int r = SendMMsg(fd, msgs + next, (uint)(messages - next), 0);
                if (r > 0)
                {
                    for (int i = first[next]; i < first[next + r]; i++) sent[i] = true;
                    ok += first[next + r] - first[next];
                    next += r;
                    continue;
                }
                int errno = r < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (errno == EIntr) continue;
                if (errno == ENoSys)
                {
                    MarkMissing();
                    int from = first[next];
                    return ok + SendEach(datagrams[from..], to[from..], sent[from..]);
                }
                int a = first[next], b = first[next + 1];
                if (b - a > 1 && errno is EIo or EInval or EOpNotSupp)
                {
                    // No segmentation offload here (old kernel, no checksum offload): stop asking, send one by one.
                    _gso = false;
                    ok += SendEach(datagrams[a..b], to[a..b], sent[a..b]);
                }
                // The first remaining message failed (sendmmsg reports an error only when none left):
                // EAGAIN goes through the managed call, which waits; anything else drops that message.
                else if (errno == EAgain) ok += SendEach(datagrams[a..b], to[a..b], sent[a..b]);
                next++;
            }
            return ok;
        }
        catch (ObjectDisposedException)
        {
            return ok;
        }
        finally
        {
            for (int i = 0; i < count; i++) pins[i].Dispose();
            if (added) _handle.DangerousRelease();
        }
    }

    /// <summary>End (exclusive) of the run from <paramref name="start"/> that one GSO send can carry: same
    /// destination, same size (the last may be shorter), at most 64 segments and 65,000 bytes.</summary>
    private static int GsoRunEnd(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, ReadOnlySpan<SocketAddress> to, int start)
    {
        int size = datagrams[start].Length, total = size, end = start + 1;
        if (size == 0) return end;
        while (end < datagrams.Length && end - start < MaxSegments)
        {
            int next = datagrams[end].Length;
            if (next == 0 || next > size || total + next > MaxGsoBytes || !to[end].SameAs(to[start])) break;
            total += next;
            end++;
            if (next < size) break;   // a shorter datagram can only be the last segment
        }
        return end;
    }
}
