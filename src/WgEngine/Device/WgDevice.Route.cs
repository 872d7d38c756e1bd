using WgEngine.Contracts;
using WgEngine.PacketPlane;

namespace WgEngine.Device;

internal sealed partial class WgDevice
{
    /// <summary>
    /// The hub packet plane: echo requests to the gateway's own addresses are answered, a destination
    /// inside another peer's AllowedIPs goes to that peer, anything else goes to egress if there is one
    /// (on a client device: local delivery) and is dropped and counted otherwise. A peer without a session
    /// here goes to the relay, if one is attached and has a route (a fleet instance's mesh); packets that
    /// come in through <see cref="SendPacket"/> (the mesh's deliveries among them) never reach this method,
    /// so nothing is relayed twice.
    /// </summary>
    private void Route(Peer from, PacketBuffer buf)
    {
        if (!UploadAllowed(from, buf.Length)) { _pool.Return(buf); return; }
        var packet = buf.Data.AsSpan(MessageLayoutOffsets.Payload, buf.Length);
        var dst = IpHeader.Destination(packet);
        if (IsOwnAddress(dst))
        {
            int reply = IcmpEchoResponder.TryBuildReply(buf.Data.AsSpan(MessageLayoutOffsets.Payload), buf.Length);
            if (reply > 0)
            {
                Interlocked.Increment(ref Counters.IcmpEchoReplies);
                buf.Length = reply;
                SendToPeer(from, buf);
                return;
            }
        }
        else
        {
            var to = _allowedIps.Lookup(dst);
            if (to is not null && !ReferenceEquals(to, from))
            {
                if (!PolicyPermits(from, packet, toPeer: true)) { RefuseByPolicy(from, buf); return; }
                if (TryRelay(to, packet)) { _pool.Return(buf); return; }
                SendToPeer(to, buf);
                return;
            }
        }
        if (_options.Egress is { } egress)
        {
            if (!PolicyPermits(from, packet, toPeer: false)) { RefuseByPolicy(from, buf); return; }
            // On a worker, with the rest of its wake-up's packets (FlushOutgoing); elsewhere at once.
            if (t_egress is { } batch && ReferenceEquals(batch.Owner, this)) batch.Batch.Deliver(from.PublicKey, packet);
            else egress.Deliver(from.PublicKey, packet);
            _pool.Return(buf);
            return;
        }
        Drop(buf, ref Counters.DroppedNoRoute);
    }

    private IPacketRelay? _relay;

    /// <summary>Attaches (or with null detaches) the relay for peers without a session on this device.</summary>
    public void SetRelay(IPacketRelay? relay) => Volatile.Write(ref _relay, relay);

    /// <summary>True when the packet went to the relay: there is one, the peer has no usable session here, and the relay had a route.</summary>
    private bool TryRelay(Peer to, ReadOnlySpan<byte> packet)
    {
        if (Volatile.Read(ref _relay) is not { } relay || to.Session.HasUsableSession(Now, _times)) return false;
        if (!relay.TryRelay(packet)) return false;
        Interlocked.Increment(ref Counters.RelayedPackets);
        return true;
    }

    private bool IsOwnAddress(ReadOnlySpan<byte> address)
    {
        foreach (var own in _ownAddresses)
            if (address.SequenceEqual(own)) return true;
        return false;
    }

}
