using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using static WgEngine.Conn.LinuxBatchIo;

namespace WgEngine.Conn;

/// <summary>
/// Batched I/O for <see cref="UdpBind"/>: on Linux one recvmmsg/sendmmsg moves up to
/// <see cref="MaxBatch"/> datagrams; elsewhere, with batching off, or once the kernel says ENOSYS,
/// the single-datagram Socket calls. Everything native lives on the stack: no allocation per call
/// beyond a per-thread pin table made once.
/// </summary>
public sealed unsafe partial class UdpBind
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
            int r = ReceiveNative(buffers, from, lengths);
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

    private int SendNative(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, ReadOnlySpan<SocketAddress> to, Span<bool> sent)
    {
        int count = datagrams.Length;
        var msgs = stackalloc MMsgHdr[count];
        var iov = stackalloc IoVec[count];
        var names = stackalloc byte[count * AddressRoom];
        var pins = t_pins ??= new MemoryHandle[MaxBatch];
        sent.Clear();
        int ok = 0;
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
                int nameLength = Math.Min(to[i].Size, AddressRoom);
                to[i].Buffer.Span[..nameLength].CopyTo(new Span<byte>(names + i * AddressRoom, AddressRoom));
                msgs[i].Header = new MsgHdr { Name = names + i * AddressRoom, NameLength = (uint)nameLength, Iov = iov + i, IovLength = 1 };
                msgs[i].Length = 0;
            }
            int next = 0;
            while (next < count)
            {
                int r = SendMMsg(fd, msgs + next, (uint)(count - next), 0);
                if (r > 0)
                {
                    for (int i = next; i < next + r; i++) sent[i] = true;
                    ok += r;
                    next += r;
                    continue;
                }
                int errno = r < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (errno == EIntr) continue;
                if (errno == ENoSys)
                {
                    MarkMissing();
                    return ok + SendEach(datagrams[next..], to[next..], sent[next..]);
                }
                // The first remaining datagram failed (sendmmsg reports an error only when none left):
                // EAGAIN goes through the managed call, which waits; anything else drops that one datagram.
                if (errno == EAgain && (sent[next] = Send(datagrams[next].Span, to[next]))) ok++;
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
}
