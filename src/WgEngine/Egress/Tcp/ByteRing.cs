using System.Buffers;

namespace WgEngine.Egress.Tcp;

/// <summary>
/// Fixed-capacity byte ring whose array is rented from the shared pool on first use and can be handed
/// back while the ring is empty, so an idle flow holds no buffer. Readable bytes start at the head; bytes
/// may also be placed ahead of the readable end (out-of-order TCP data) and committed later.
/// Not thread-safe: the owner serialises calls, but the contiguous <see cref="ReadableSegment"/> and
/// <see cref="WritableSegment"/> it hands out may be used outside its lock, since only the owner's
/// Consume/Commit move the boundaries (and it must not <see cref="ReleaseIfEmpty"/> while one is out).
/// </summary>
internal sealed class ByteRing
{
    private readonly int _capacity;
    private byte[]? _buf;
    private int _head, _count;

    public ByteRing(int capacity)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity));
        _capacity = capacity;
    }

    public int Capacity => _capacity;
    public int Count => _count;
    public int Free => _capacity - _count;
    public bool HasBuffer => _buf is not null;

    private byte[] Buf => _buf ??= ArrayPool<byte>.Shared.Rent(_capacity);

    /// <summary>Copies <paramref name="data"/> to <paramref name="offset"/> bytes past the readable end, without committing it.</summary>
    public void WriteAhead(int offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || offset + data.Length > Free) throw new ArgumentOutOfRangeException(nameof(offset));
        var buf = Buf;
        int pos = (_head + _count + offset) % _capacity;
        int first = Math.Min(data.Length, _capacity - pos);
        data.Slice(0, first).CopyTo(buf.AsSpan(pos));
        data.Slice(first).CopyTo(buf.AsSpan(0));
    }

    /// <summary>Appends and commits.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        WriteAhead(0, data);
        _count += data.Length;
    }

    /// <summary>Makes <paramref name="n"/> bytes written ahead (or into <see cref="WritableSegment"/>) readable.</summary>
    public void Commit(int n)
    {
        if (n < 0 || n > Free) throw new ArgumentOutOfRangeException(nameof(n));
        _count += n;
    }

    /// <summary>Copies readable bytes starting <paramref name="offset"/> past the head into <paramref name="dst"/> (peek).</summary>
    public void CopyTo(int offset, Span<byte> dst)
    {
        if (offset < 0 || offset + dst.Length > _count) throw new ArgumentOutOfRangeException(nameof(offset));
        if (dst.IsEmpty) return;
        var buf = _buf!;
        int pos = (_head + offset) % _capacity;
        int first = Math.Min(dst.Length, _capacity - pos);
        buf.AsSpan(pos, first).CopyTo(dst);
        buf.AsSpan(0, dst.Length - first).CopyTo(dst.Slice(first));
    }

    public void Consume(int n)
    {
        if (n < 0 || n > _count) throw new ArgumentOutOfRangeException(nameof(n));
        _head = (_head + n) % _capacity;
        _count -= n;
        // The head is never reset on drain: a pump may be filling WritableSegment outside the owner's lock.
    }

    /// <summary>The readable bytes from the head up to the wrap.</summary>
    public Memory<byte> ReadableSegment => _count == 0 ? Memory<byte>.Empty : _buf.AsMemory(_head, Math.Min(_count, _capacity - _head));

    /// <summary>The free bytes from the readable end up to the wrap (fill, then <see cref="Commit"/>); rents the array if needed.</summary>
    public Memory<byte> WritableSegment
    {
        get
        {
            if (Free == 0) return Memory<byte>.Empty;
            int end = (_head + _count) % _capacity;
            int len = end >= _head ? _capacity - end : _head - end;
            return Buf.AsMemory(end, Math.Min(len, Free));
        }
    }

    /// <summary>Hands the array back while nothing is buffered (nor written ahead: the caller knows). True if it did.</summary>
    public bool ReleaseIfEmpty()
    {
        if (_count != 0 || _buf is null) return false;
        ReturnBuffer();
        return true;
    }

    /// <summary>Hands the array back regardless of content (the flow is gone).</summary>
    public void ReturnBuffer()
    {
        if (_buf is not null) ArrayPool<byte>.Shared.Return(_buf);
        _buf = null;
        _head = _count = 0;
    }
}
