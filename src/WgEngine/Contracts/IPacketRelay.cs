namespace WgEngine.Contracts;

/// <summary>
/// Where a gateway hands a packet for one of its peers when that peer has no session on this device (e.g. a
/// fleet instance: the peer's session is on another instance, reached through the mesh; docs/fleet.md).
/// Called on a packet thread, after the sender's policy allowed the packet, with the decrypted IP packet.
/// Must not keep the span, block or allocate; false when it has no route for it (the device then goes on as
/// without a relay: the packet waits for a handshake with that peer).
/// </summary>
internal interface IPacketRelay
{
    bool TryRelay(ReadOnlySpan<byte> ipPacket);
}
