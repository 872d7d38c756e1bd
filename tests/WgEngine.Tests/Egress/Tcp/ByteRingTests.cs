using WgEngine.Egress.Tcp;

namespace WgEngine.Tests.Egress.Tcp;

public class ByteRingTests
{
    [Fact]
    public void WrapsAndKeepsOrder()
    {
        var ring = new ByteRing(10);
        ring.Write([1, 2, 3, 4, 5, 6, 7]);
        ring.Consume(5);
        ring.Write([8, 9, 10, 11, 12, 13]);                         // wraps past index 9
        Assert.Equal(8, ring.Count);
        var all = new byte[8];
        ring.CopyTo(0, all);
        Assert.Equal(new byte[] { 6, 7, 8, 9, 10, 11, 12, 13 }, all);
        Assert.Equal(new byte[] { 6, 7, 8, 9, 10 }, ring.ReadableSegment.ToArray()); // up to the wrap
        Assert.Equal(2, ring.WritableSegment.Length);
    }

    [Fact]
    public void WriteAheadCommitsLater()
    {
        var ring = new ByteRing(8);
        ring.WriteAhead(3, [4, 5]);
        Assert.Equal(0, ring.Count);
        ring.Write([1, 2, 3]);
        ring.Commit(2);
        var all = new byte[5];
        ring.CopyTo(0, all);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, all);
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.WriteAhead(2, new byte[2])); // beyond capacity
    }

    [Fact]
    public void DrainingDoesNotMoveTheFreeRegionAHostPumpIsFilling()
    {
        var ring = new ByteRing(8);
        ring.Write([1, 2, 3]);
        var handedOut = ring.WritableSegment;                        // a pump reads into this outside the lock...
        ring.Consume(3);                                             // ...while an ACK drains the ring
        new byte[] { 7, 8 }.CopyTo(handedOut.Span);
        ring.Commit(2);
        Assert.Equal(new byte[] { 7, 8 }, ring.ReadableSegment.ToArray());
    }

    [Fact]
    public void ArrayIsRentedOnFirstUseAndReleasedOnlyWhenEmpty()
    {
        var ring = new ByteRing(64);
        Assert.False(ring.HasBuffer);
        Assert.Equal(64, ring.Free);                                 // capacity counts without a buffer
        Assert.True(ring.ReadableSegment.IsEmpty);
        Assert.False(ring.HasBuffer);
        ring.Write([1, 2, 3]);
        Assert.True(ring.HasBuffer);
        Assert.False(ring.ReleaseIfEmpty());
        ring.Consume(3);
        Assert.True(ring.ReleaseIfEmpty());
        Assert.False(ring.HasBuffer);
        ring.Write([4]);                                             // rented again on demand
        Assert.Equal(new byte[] { 4 }, ring.ReadableSegment.ToArray());
    }
}
