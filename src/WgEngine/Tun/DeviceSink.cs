using WgEngine.Device;
using WgEngine.Egress;

namespace WgEngine.Tun;

/// <summary>
/// The tunnel side of an egress that must exist before its device does (the device takes the egress in
/// its options): packets go to <see cref="Device"/> once it is set, and are refused before.
/// </summary>
public sealed class DeviceSink : IPacketSink
{
    private WgDevice? _device;

    public WgDevice? Device
    {
        get => Volatile.Read(ref _device);
        set => Volatile.Write(ref _device, value);
    }

    public bool SendPacket(ReadOnlySpan<byte> ipPacket) => Volatile.Read(ref _device)?.SendPacket(ipPacket) ?? false;
}
