using System.Buffers.Binary;
using System.Net.Sockets;
using WgEngine.Crypto;
using WgEngine.PacketPlane;

namespace WgEngine.Egress;

/// <summary>
/// ICMP echo to outside destinations through unprivileged ICMP ("ping") sockets: socket(AF_INET,
/// SOCK_DGRAM, IPPROTO_ICMP) and the ICMPv6 equivalent, which Linux allows when the process's group
/// is inside net.ipv4.ping_group_range (also for IPv6). The kernel replaces the echo identifier with
/// the socket's own and fills in the checksum, so there is one socket per (peer, source, identifier)
/// and replies get the peer's identifier back. Without such sockets requests are counted in
/// IcmpUnavailable and the reason is logged once (docs/egress.md).
/// </summary>
internal sealed class IcmpEchoEgress : DatagramNat
{
    private const int EchoHeaderLength = 8;
    private static readonly TimeSpan RetryUnavailable = TimeSpan.FromSeconds(30);
    private readonly Func<bool, Socket> _socketFactory;
    private readonly Action<string>? _log;
    private readonly long[] _unavailableUntil = new long[2];   // [0] IPv4, [1] IPv6; timestamps
    private int _logged;

    public IcmpEchoEgress(IPacketSink sink, EgressOptions options, EgressCounters counters, EgressPolicy policy, int mtu,
        Func<bool, Socket>? socketFactory = null, Action<string>? log = null)
        : base(sink, options, counters, policy, mtu, options.UdpIdleTimeout, options.MaxUdpFlowsPerPeer, options.MaxUdpFlows)
    {
        _socketFactory = socketFactory ?? DefaultSocket;
        _log = log;
    }

    /// <summary>Why echo requests are not forwarded, once the host refused a ping socket; null while they are.</summary>
    public string? UnavailableReason { get; private set; }

    public static Socket DefaultSocket(bool ipv4) =>
        BindDatagram(ipv4
            ? new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Icmp)
            : new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.IcmpV6), ipv4);

    protected override int ReceiveOffset => IpHeader.IPv6HeaderLength;
    protected override int TransportHeader => 0;

    protected override Socket? OpenSocket(bool ipv4)
    {
        ref long until = ref _unavailableUntil[ipv4 ? 0 : 1];
        long now = Now;
        if (Volatile.Read(ref until) > now) { Interlocked.Increment(ref Counters.icmpUnavailable); return null; }
        try { return _socketFactory(ipv4); }
        catch (SocketException e)
        {
            Volatile.Write(ref until, now + TicksOf(RetryUnavailable));
            Interlocked.Increment(ref Counters.icmpUnavailable);
            string reason = $"ICMP echo egress unavailable ({(ipv4 ? "IPv4" : "IPv6")}): the host refused an unprivileged ICMP socket ({e.SocketErrorCode}). "
                + "Allow this process's group in net.ipv4.ping_group_range (e.g. sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"); see docs/egress.md.";
            UnavailableReason = reason;
            if (Interlocked.Exchange(ref _logged, 1) == 0) _log?.Invoke(reason);
            return null;
        }
    }

    protected override void OnOpened() { }
    protected override void OnClosed() { }
    protected override void OnLimited() => Interlocked.Increment(ref Counters.icmpLimited);

    /// <summary>An ICMP or ICMPv6 packet from a peer; the dispatcher sends only echo requests here.</summary>
    public override void OnPacket(WgKey fromPeer, ReadOnlySpan<byte> ipPacket)
    {
        if (!IpHeader.TryParse(ipPacket, out var info) || !TryReadEcho(ipPacket, info, out var icmp))
        {
            Interlocked.Increment(ref Counters.malformed);
            return;
        }
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(icmp.Slice(4));
        var flow = GetOrOpen(new FlowKey(fromPeer, info.Source(ipPacket), id));
        if (flow is null) return;
        Interlocked.Increment(ref Counters.icmpEchoSent);
        Send(flow, info.Destination(ipPacket), 0, icmp);
    }

    private static bool TryReadEcho(ReadOnlySpan<byte> packet, in IpPacketInfo info, out ReadOnlySpan<byte> icmp)
    {
        icmp = info.Payload(packet);
        if (icmp.Length < EchoHeaderLength || icmp[1] != 0) return false;
        if (info.IsIPv4)
            return icmp[0] == IcmpEchoResponder.IcmpV4EchoRequest && Checksum.IsValid(icmp);
        return icmp[0] == IcmpEchoResponder.IcmpV6EchoRequest
            && Checksum.IsValidV6(info.Source(packet), info.Destination(packet), PacketWriter.ProtocolIcmpV6, icmp);
    }

    /// <summary>An echo reply: the peer's identifier back, checksum recomputed, IP header in front.</summary>
    protected override void OnReceived(Flow flow, int length)
    {
        bool v4 = flow.Key.IsIPv4;
        var icmp = flow.Buffer.AsSpan(ReceiveOffset, length);
        if (length < EchoHeaderLength || icmp[0] != (v4 ? IcmpEchoResponder.IcmpV4EchoReply : IcmpEchoResponder.IcmpV6EchoReply)) return;
        BinaryPrimitives.WriteUInt16BigEndian(icmp.Slice(4), flow.Key.Id);
        Span<byte> peerAddress = stackalloc byte[16];
        peerAddress = peerAddress.Slice(0, flow.Key.WriteAddress(peerAddress));
        var packet = flow.Buffer.AsSpan(ReceiveOffset - PacketWriter.IpHeaderLength(v4));
        int n = PacketWriter.WriteIcmp(packet, SocketAddressBytes.Address(flow.From), peerAddress, length);
        if (Sink.SendPacket(packet.Slice(0, n))) Interlocked.Increment(ref Counters.icmpEchoReplies);
    }
}
