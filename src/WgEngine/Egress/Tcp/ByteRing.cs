namespace WgEngine.Egress.Tcp;

/// <summary>
/// Fixed-capacity byte ring over one array allocated (rented) once per flow. Readable bytes start at the
/// head; bytes may also be placed ahead of the readable end (out-of-order TCP data) and committed later.
/// Not thread-safe: the owner serialises calls, but the contiguous <see cref="ReadableSegment"/> and
/// <see cref="WritableSegment"/> it hands out may be used outside its lock, since only the owner's
/// Consume/Commit move the boundaries.
/// </summary>
internal sealed class ByteRing
{
    private readonly byte[] _buf;
    private readonly int _capacity;
    private int _head, _count;

    public ByteRing(byte[] buffer, int capacity)
    {
        if (capacity <= 0 || capacity > buffer.Length) throw new ArgumentOutOfRangeException(nameof(capacity));
        _buf = buffer;
        _capacity = capacity;
    }

    public byte[] Array => _buf;
    public int Capacity => _capacity;
    public int Count => _count;
    public int Free => _capacity - _count;

    /// <summary>Copies <paramref name="data"/> to <paramref name="offset"/> bytes past the readable end, without committing it.</summary>
    public void WriteAhead(int offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || offset + data.Length > Free) throw new ArgumentOutOfRangeException(nameof(offset));
        int pos = (_head + _count + offset) % _capacity;
        int first = Math.Min(data.Length, _capacity - pos);
        data.Slice(0, first).CopyTo(_buf.AsSpan(pos));
        data.Slice(first).CopyTo(_buf.AsSpan(0));
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
        int pos = (_head + offset) % _capacity;
        int first = Math.Min(dst.Length, _capacity - pos);
        _buf.AsSpan(pos, first).CopyTo(dst);
        _buf.AsSpan(0, dst.Length - first).CopyTo(dst.Slice(first));
    }

    public void Consume(int n)
    {
        if (n < 0 || n > _count) throw new ArgumentOutOfRangeException(nameof(n));
        _head = (_head + n) % _capacity;
        _count -= n;
        // The head is never reset on drain: a pump may be filling WritableSegment outside the owner's lock.
    }

    /// <summary>The readable bytes from the head up to the wrap.</summary>
    public Memory<byte> ReadableSegment => _buf.AsMemory(_head, Math.Min(_count, _capacity - _head));

    /// <summary>The free bytes from the readable end up to the wrap (fill, then <see cref="Commit"/>).</summary>
    public Memory<byte> WritableSegment
    {
        get
        {
            int end = (_head + _count) % _capacity;
            int len = end >= _head && _count < _capacity ? _capacity - end : _head - end;
            return _buf.AsMemory(end, Math.Min(len, Free));
        }
    }
}
