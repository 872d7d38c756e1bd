using WgEngine.Contracts;
using WgEngine.Crypto;

namespace WgEngine.Tun;

/// <summary>
/// One crypto worker's pending TUN writes: the packets of a wake-up are copied into a pinned arena, and
/// on <see cref="Flush"/> (queue empty, or the arena full) <see cref="TunCoalescer"/> groups them; each
/// super-packet goes out in one writev (vnet header + merged headers + every member's payload), the
/// rest alone as before. If the kernel refuses a super-packet (EINVAL), its packets are written one by
/// one and the egress stops coalescing. Without a vnet header (or once refused) packets are written as
/// they come. One thread only; no allocation after construction.
/// </summary>
internal sealed unsafe class TunWriteBatch(TunEgress egress) : IEgressBatch
{
    /// <summary>Room for <see cref="TunCoalescer.MaxPackets"/> packets of a 1500-byte MTU and more: a flush
    /// never has to cut a 64 KiB run short for room.</summary>
    private const int ArenaSize = 4 * 65536;

    private readonly byte[] _arena = GC.AllocateUninitializedArray<byte>(ArenaSize, pinned: true);
    private readonly int[] _offsets = new int[TunCoalescer.MaxPackets];
    private readonly int[] _lengths = new int[TunCoalescer.MaxPackets];
    private readonly TunCoalescer _coalescer = new();
    private int _count, _used;

    public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet)
    {
        if (!egress.CoalescingEnabled || packet.Length > ArenaSize)
        {
            Flush();
            egress.Deliver(fromPeer, packet);
            return;
        }
        if (_count == TunCoalescer.MaxPackets || _used + packet.Length > ArenaSize) Flush();
        packet.CopyTo(_arena.AsSpan(_used));
        _offsets[_count] = _used;
        _lengths[_count++] = packet.Length;
        _used += packet.Length;
    }

    public void Flush()
    {
        if (_count == 0) return;
        try
        {
            int groups = _coalescer.Coalesce(_arena, _offsets, _lengths, _count, tcp: true, udp: egress.CoalesceUdp);
            if (_coalescer.ChecksumsLeftToKernel > 0) Interlocked.Add(ref egress.Counters.checksumsLeftToKernel, _coalescer.ChecksumsLeftToKernel);
            fixed (byte* arena = _arena)
            fixed (byte* headers = _coalescer.Headers)
                for (int g = 0; g < groups; g++) Write(arena, headers, in _coalescer.Groups[g]);
        }
        finally
        {
            _count = _used = 0;
        }
    }

    private void Write(byte* arena, byte* headers, in TunCoalescer.Group group)
    {
        var members = _coalescer.Members.AsSpan(group.Start, group.Count);
        if (group.Count == 1 || !egress.CoalescingEnabled)
        {
            WriteAlone(members);
            return;
        }
        var iov = stackalloc TunNative.IoVec[TunCoalescer.MaxPackets + 1];
        iov[0] = new TunNative.IoVec { Base = headers + group.Slot * TunCoalescer.HeaderSlot, Length = (nuint)(VirtioNetHeader.Size + group.HeaderLength) };
        int ipLength = group.HeaderLength;
        for (int m = 0; m < members.Length; m++)
        {
            int payload = _lengths[members[m]] - group.HeaderLength;
            iov[m + 1] = new TunNative.IoVec { Base = arena + _offsets[members[m]] + group.HeaderLength, Length = (nuint)payload };
            ipLength += payload;
        }
        int errno = egress.SuperPacketFault != 0 ? egress.SuperPacketFault : egress.Write(iov, members.Length + 1, ipLength, members.Length);
        if (errno == 0)
        {
            Interlocked.Increment(ref egress.Counters.coalescedWrites);
            Interlocked.Add(ref egress.Counters.coalescedPackets, members.Length);
        }
        else if (errno == TunNative.EINVAL)
        {
            egress.RefuseCoalescing();
            WriteAlone(members);
        }
    }

    private void WriteAlone(ReadOnlySpan<int> members)
    {
        foreach (int i in members) egress.Deliver(default, _arena.AsSpan(_offsets[i], _lengths[i]));
    }
}
