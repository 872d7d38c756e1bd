using System.Net.Sockets;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Net;
using WgEngine.PacketPlane;

namespace WgEngine.Egress;

/// <summary>Builds the TCP part of the userspace egress (the TCP stack plugs in here).</summary>
internal delegate IEgressProtocol TcpEgressFactory(IPacketSink sink, EgressOptions options, EgressCounters counters);

/// <summary>
/// The userspace egress: takes the peers' packets that leave the tunnel, checks them, applies the
/// <see cref="EgressPolicy"/> and hands them by protocol to TCP, UDP or ICMP echo, which re-dial them
/// from the host with ordinary sockets. Refused destinations get ICMP "administratively prohibited"
/// so that the client fails fast; anything else not handled is counted and dropped.
/// </summary>
internal sealed class UserspaceEgress : IEgress, IDisposable
{
    private readonly IPacketSink _sink;
    private readonly IEgressProtocol? _tcp;
    private readonly UdpEgress _udp;
    private readonly IcmpEchoEgress _icmp;
    private readonly byte[]? _gatewayV4, _gatewayV6;
    private readonly byte[][] _ownAddresses;   // the gateway's tunnel addresses: never dialled from the host
    private int _disposed;

    /// <param name="sink">The way back into the tunnel (a <see cref="LateBoundPacketSink"/> when the device is created after this).</param>
    /// <param name="tcp">Builds the TCP handler; null: TCP packets are counted as unsupported.</param>
    /// <param name="gatewayAddresses">The gateway's own tunnel addresses: the source of the ICMP errors it sends.</param>
    /// <param name="mtu">The tunnel MTU: replies larger than it are dropped.</param>
    /// <param name="log">Told once about conditions an operator should fix (e.g. no unprivileged ICMP sockets).</param>
    public UserspaceEgress(IPacketSink sink, EgressOptions? options = null, TcpEgressFactory? tcp = null,
        IReadOnlyList<IpPrefix>? gatewayAddresses = null, int mtu = 1420, Action<string>? log = null)
        : this(sink, options ?? new EgressOptions(), tcp, gatewayAddresses, mtu, log, null, null) { }

    /// <summary>With the host sockets injected (tests: ping sockets in a namespace, or a host that refuses them).</summary>
    internal UserspaceEgress(IPacketSink sink, EgressOptions options, TcpEgressFactory? tcp, IReadOnlyList<IpPrefix>? gatewayAddresses,
        int mtu, Action<string>? log, Func<bool, Socket>? udpSockets, Func<bool, Socket>? icmpSockets)
    {
        ArgumentNullException.ThrowIfNull(sink);
        _sink = sink;
        Options = options;
        Policy = new EgressPolicy(EgressRules.From(options), options.HostAddresses);
        var own = new List<byte[]>();
        foreach (var a in gatewayAddresses ?? [])
        {
            own.Add(a.Address.GetAddressBytes());
            if (a.IsIPv4) _gatewayV4 ??= a.Address.GetAddressBytes();
            else _gatewayV6 ??= a.Address.GetAddressBytes();
        }
        _ownAddresses = [.. own];
        _udp = new UdpEgress(sink, options, Counters, Policy, mtu, udpSockets);
        _icmp = new IcmpEchoEgress(sink, options, Counters, Policy, mtu, icmpSockets, log);
        try { _tcp = tcp?.Invoke(sink, options, Counters); }
        catch { _udp.Dispose(); _icmp.Dispose(); throw; }
    }

    public EgressOptions Options { get; }
    public EgressPolicy Policy { get; }
    public EgressCounters Counters { get; } = new();
    /// <summary>True when a TCP handler is plugged in.</summary>
    public bool HandlesTcp => _tcp is not null;
    /// <summary>Why pings to outside hosts are not forwarded, once the host refused a ping socket; null otherwise.</summary>
    public string? IcmpUnavailableReason => _icmp.UnavailableReason;
    /// <summary>Open UDP mappings (host sockets).</summary>
    public int UdpFlowCount => _udp.FlowCount;
    /// <summary>Open ICMP echo mappings (host ping sockets).</summary>
    public int IcmpFlowCount => _icmp.FlowCount;

    /// <summary>Closes the UDP and ICMP mappings idle past their timeout (also done on a timer).</summary>
    public void Sweep()
    {
        _udp.Sweep();
        _icmp.Sweep();
    }

    public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet)
    {
        if (!IpHeader.TryParse(packet, out var info)) { Interlocked.Increment(ref Counters.malformed); return; }
        packet = packet.Slice(0, info.TotalLength);   // WireGuard padding off
        if (info.IsIPv4)
        {
            if (!IpHeader.IsIPv4HeaderChecksumValid(packet, info.HeaderLength)) { Interlocked.Increment(ref Counters.malformed); return; }
        }
        var destination = info.Destination(packet);
        // The gateway's own tunnel address is no host service (the packet plane answers its pings): dialling it
        // from the host would reach whatever the host's routes say owns that address.
        if (IsOwnAddress(destination) || !Policy.IsAllowed(destination))
        {
            Interlocked.Increment(ref Counters.denied);
            AnswerProhibited(packet, info);
            return;
        }
        // Fragments are not reassembled (the peers' stacks do PMTU discovery through the tunnel MTU).
        if (info.IsIPv4 && IpHeader.IsIPv4Fragment(packet)) { Interlocked.Increment(ref Counters.unsupported); return; }
        switch (info.Protocol)
        {
            case PacketWriter.ProtocolTcp:
                if (_tcp is null) { Interlocked.Increment(ref Counters.unsupported); return; }
                _tcp.OnPacket(fromPeer, packet);
                return;
            case PacketWriter.ProtocolUdp:
                _udp.OnPacket(fromPeer, packet);
                return;
            case PacketWriter.ProtocolIcmp when info.IsIPv4:
            case PacketWriter.ProtocolIcmpV6 when !info.IsIPv4:
                if (info.PayloadLength > 0 && packet[info.HeaderLength] == (info.IsIPv4 ? IcmpEchoResponder.IcmpV4EchoRequest : IcmpEchoResponder.IcmpV6EchoRequest))
                {
                    _icmp.OnPacket(fromPeer, packet);
                    return;
                }
                Interlocked.Increment(ref Counters.unsupported);   // other ICMP (errors, neighbour discovery) is not forwarded
                return;
            default:
                // Includes IPv6 packets with extension headers, which are not walked.
                Interlocked.Increment(ref Counters.unsupported);
                return;
        }
    }

    private static ReadOnlySpan<byte> LinkLocalSource => [0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    private static bool IsUnicastV6(ReadOnlySpan<byte> a) =>
        a[0] != 0xFF && !(a.Slice(0, 15).IndexOfAnyExcept((byte)0) < 0 && a[15] <= 1) && !(a.Slice(0, 10).IndexOfAnyExcept((byte)0) < 0);

    private bool IsOwnAddress(ReadOnlySpan<byte> address)
    {
        foreach (var own in _ownAddresses)
            if (address.SequenceEqual(own)) return true;
        return false;
    }

    private void AnswerProhibited(ReadOnlySpan<byte> packet, in IpPacketInfo info)
    {
        Span<byte> reply = stackalloc byte[IcmpErrors.MaxV6];
        ReadOnlySpan<byte> from = (info.IsIPv4 ? _gatewayV4 : _gatewayV6) ?? info.Destination(packet);
        // Without a gateway address of the family the error comes from the refused destination, but never from
        // ::1 or another non-unicast address: receivers drop such sources on the wire (RFC 4291 §2.5.3), and the
        // client would wait for its timeout. A link-local source is valid on any interface (RFC 4443 §2.2).
        if (!info.IsIPv4 && _gatewayV6 is null && !IsUnicastV6(from)) from = LinkLocalSource;
        int n = IcmpErrors.BuildProhibited(packet, info, from, reply);
        if (n > 0) _sink.SendPacket(reply.Slice(0, n));
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _tcp?.Dispose();
        _udp.Dispose();
        _icmp.Dispose();
        Policy.Dispose();
    }
}
