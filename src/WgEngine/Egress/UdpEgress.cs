using System.Buffers.Binary;
using System.Net.Sockets;
using WgEngine.Crypto;
using WgEngine.PacketPlane;

namespace WgEngine.Egress;

/// <summary>
/// UDP egress: one host UDP socket per (peer, inner source address, source port, IP version), so a
/// peer's application keeps one public port for all its destinations (DNS, QUIC, games), and replies
/// come back as UDP datagrams from the address and port that sent them.
/// </summary>
internal sealed class UdpEgress : DatagramNat
{
    private const int HeaderRoom = IpHeader.IPv6HeaderLength + PacketWriter.UdpHeaderLength;
    private readonly Func<bool, Socket> _socketFactory;

    public UdpEgress(IPacketSink sink, EgressOptions options, EgressCounters counters, EgressPolicy policy, int mtu,
        Func<bool, Socket>? socketFactory = null)
        : base(sink, options, counters, policy, mtu, options.UdpIdleTimeout, options.MaxUdpFlowsPerPeer, options.MaxUdpFlows)
    {
        _socketFactory = socketFactory ?? DefaultSocket;
    }

    private static Socket DefaultSocket(bool ipv4) =>
        BindDatagram(new Socket(ipv4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp), ipv4);

    protected override int ReceiveOffset => HeaderRoom;
    protected override int TransportHeader => PacketWriter.UdpHeaderLength;

    protected override Socket? OpenSocket(bool ipv4)
    {
        try { return _socketFactory(ipv4); }
        catch (SocketException)
        {
            // The host's limit (open files) or no IPv6 here: the datagram is dropped and counted as limited.
            Interlocked.Increment(ref Counters.udpLimited);
            return null;
        }
    }

    protected override void OnOpened()
    {
        Interlocked.Increment(ref Counters.udpFlowsOpened);
        Interlocked.Increment(ref Counters.udpFlowsActive);
    }

    protected override void OnClosed() => Interlocked.Decrement(ref Counters.udpFlowsActive);
    protected override void OnLimited() => Interlocked.Increment(ref Counters.udpLimited);

    /// <summary>A UDP packet from a peer, already parsed and allowed by the dispatcher.</summary>
    public override void OnPacket(WgKey fromPeer, ReadOnlySpan<byte> ipPacket)
    {
        if (!IpHeader.TryParse(ipPacket, out var info) || !TryReadUdp(ipPacket, info, out var udp))
        {
            Interlocked.Increment(ref Counters.malformed);
            return;
        }
        ushort sourcePort = BinaryPrimitives.ReadUInt16BigEndian(udp);
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(udp.Slice(2));
        if (destinationPort == 0) { Interlocked.Increment(ref Counters.malformed); return; }
        var flow = GetOrOpen(new FlowKey(fromPeer, info.Source(ipPacket), sourcePort));
        if (flow is null) return;
        Send(flow, info.Destination(ipPacket), destinationPort, udp.Slice(PacketWriter.UdpHeaderLength));
    }

    /// <summary>The UDP datagram (header + data, by its length field), if its length and checksum hold.</summary>
    private static bool TryReadUdp(ReadOnlySpan<byte> packet, in IpPacketInfo info, out ReadOnlySpan<byte> udp)
    {
        udp = default;
        var payload = info.Payload(packet);
        if (payload.Length < PacketWriter.UdpHeaderLength) return false;
        int length = BinaryPrimitives.ReadUInt16BigEndian(payload.Slice(4));
        if (length < PacketWriter.UdpHeaderLength || length > payload.Length) return false;
        udp = payload.Slice(0, length);
        ushort checksum = BinaryPrimitives.ReadUInt16BigEndian(udp.Slice(6));
        if (checksum == 0) return info.IsIPv4;   // "no checksum" exists only in IPv4 (RFC 768; RFC 8200 §8.1)
        var src = info.Source(packet);
        var dst = info.Destination(packet);
        return Checksum.Add(PacketWriter.PseudoHeaderSum(src, dst, length, PacketWriter.ProtocolUdp), Checksum.Sum(udp)) == 0xFFFF;
    }

    /// <summary>A reply: wrap it into UDP + IP, from the sender's address and port to the peer's original ones.</summary>
    protected override void OnReceived(Flow flow, int length)
    {
        bool v4 = flow.Key.IsIPv4;
        int start = HeaderRoom - PacketWriter.UdpHeaderLength - PacketWriter.IpHeaderLength(v4);
        Span<byte> peerAddress = stackalloc byte[16];
        peerAddress = peerAddress.Slice(0, flow.Key.WriteAddress(peerAddress));
        var packet = flow.Buffer.AsSpan(start);
        int n = PacketWriter.WriteUdp(packet, SocketAddressBytes.Address(flow.From), peerAddress,
            SocketAddressBytes.Port(flow.From), flow.Key.Id, length);
        Sink.SendPacket(packet.Slice(0, n));
    }
}
