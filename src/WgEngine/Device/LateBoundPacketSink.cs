using WgEngine.Egress;

namespace WgEngine.Device;

/// <summary>
/// A sink attached after construction: the device takes the egress in its options, so the egress is
/// built first and the device attached once it exists. Packets before that are dropped (false).
/// </summary>
internal sealed class LateBoundPacketSink : IPacketSink
{
    private IPacketSink? _target;

    public void Attach(IPacketSink target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (Interlocked.CompareExchange(ref _target, target, null) is not null)
            throw new InvalidOperationException("The sink is already attached.");
    }

    /// <summary>Attaches a device: its SendPacket routes the packet to the peer that owns the destination.</summary>
    public void Attach(WgDevice device) => Attach(new DeviceSink(device));

    public bool SendPacket(ReadOnlySpan<byte> ipPacket) => Volatile.Read(ref _target)?.SendPacket(ipPacket) ?? false;
    public bool BeginBatch() => Volatile.Read(ref _target)?.BeginBatch() ?? false;
    public void EndBatch() => Volatile.Read(ref _target)?.EndBatch();

    private sealed class DeviceSink(WgDevice device) : IPacketSink
    {
        public bool SendPacket(ReadOnlySpan<byte> ipPacket) => device.SendPacket(ipPacket);
        public bool BeginBatch() => device.BeginSendBatch();
        public void EndBatch() => device.EndSendBatch();
    }
}
