using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using WgEngine.Egress;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Egress;

/// <summary>Records what the egress sends back into the tunnel.</summary>
internal sealed class CaptureSink : IPacketSink
{
    public readonly BlockingCollection<byte[]> Packets = new();
    public bool Accept { get; set; } = true;

    public bool SendPacket(ReadOnlySpan<byte> ipPacket)
    {
        Packets.Add(ipPacket.ToArray());
        return Accept;
    }

    public byte[] Next(int timeoutMs = 5000)
    {
        Assert.True(Packets.TryTake(out var p, timeoutMs), "no packet came back in time");
        return p!;
    }

    public bool Nothing(int waitMs = 200) => !Packets.TryTake(out _, waitMs);
}

/// <summary>
/// Builds and checks inner IP packets with a plain checksum written for the tests (not the engine's),
/// so that a checksum bug in the engine cannot cancel itself out.
/// </summary>
internal static class EgressPackets
{
    public static readonly WgEngine.Crypto.WgKey PeerA = WgEngine.Crypto.WgPrivateKey.Generate().PublicKey;
    public static readonly WgEngine.Crypto.WgKey PeerB = WgEngine.Crypto.WgPrivateKey.Generate().PublicKey;

    public static byte[] Ip(string src, string dst, byte protocol, byte[] payload)
    {
        var s = IPAddress.Parse(src).GetAddressBytes();
        var d = IPAddress.Parse(dst).GetAddressBytes();
        if (s.Length == 4)
        {
            var p = new byte[20 + payload.Length];
            p[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            p[8] = 64;
            p[9] = protocol;
            s.CopyTo(p, 12);
            d.CopyTo(p, 16);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Packets.Checksum(p.AsSpan(0, 20)));
            payload.CopyTo(p, 20);
            return p;
        }
        var q = new byte[40 + payload.Length];
        q[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(q.AsSpan(4), (ushort)payload.Length);
        q[6] = protocol;
        q[7] = 64;
        s.CopyTo(q, 8);
        d.CopyTo(q, 24);
        payload.CopyTo(q, 40);
        return q;
    }

    /// <summary>UDP with a correct checksum (IPv4 and IPv6).</summary>
    public static byte[] Udp(string src, string dst, ushort srcPort, ushort dstPort, byte[] data)
    {
        var udp = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(udp, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(2), dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)udp.Length);
        data.CopyTo(udp, 8);
        var p = Ip(src, dst, 17, udp);
        int off = HeaderLength(p);
        ushort c = TransportChecksum(p, 17);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(off + 6), c == 0 ? (ushort)0xFFFF : c);
        return p;
    }

    public static byte[] Echo(string src, string dst, ushort id, ushort seq, int dataLength = 24)
    {
        bool v4 = IPAddress.Parse(src).AddressFamily == AddressFamily.InterNetwork;
        var icmp = new byte[8 + dataLength];
        icmp[0] = (byte)(v4 ? 8 : 128);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(6), seq);
        for (int i = 0; i < dataLength; i++) icmp[8 + i] = (byte)(i * 7);
        var p = Ip(src, dst, (byte)(v4 ? 1 : 58), icmp);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(HeaderLength(p) + 2), v4 ? Packets.Checksum(p.AsSpan(20)) : TransportChecksum(p, 58));
        return p;
    }

    public static bool IsV4(byte[] p) => p[0] >> 4 == 4;
    public static int HeaderLength(byte[] p) => IsV4(p) ? (p[0] & 0xF) * 4 : 40;
    public static byte Protocol(byte[] p) => IsV4(p) ? p[9] : p[6];
    public static IPAddress Source(byte[] p) => new(IsV4(p) ? p.AsSpan(12, 4) : p.AsSpan(8, 16));
    public static IPAddress Destination(byte[] p) => new(IsV4(p) ? p.AsSpan(16, 4) : p.AsSpan(24, 16));
    public static int TotalLength(byte[] p) => IsV4(p) ? BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(2)) : 40 + BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(4));
    public static Span<byte> Payload(byte[] p) => p.AsSpan(HeaderLength(p), TotalLength(p) - HeaderLength(p));
    public static ushort U16(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt16BigEndian(b.Slice(offset));

    /// <summary>RFC 1071 checksum of the transport message and its pseudo-header, checksum field included as it is: 0 for a valid message, the value to store when the field is zeroed.</summary>
    public static ushort TransportChecksum(byte[] p, byte protocol)
    {
        var payload = Payload(p);
        var sum = new List<byte>();
        if (IsV4(p))
        {
            sum.AddRange(p.AsSpan(12, 8).ToArray());
            sum.AddRange([0, protocol, (byte)(payload.Length >> 8), (byte)payload.Length]);
        }
        else
        {
            sum.AddRange(p.AsSpan(8, 32).ToArray());
            sum.AddRange([(byte)(payload.Length >> 24), (byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length, 0, 0, 0, protocol]);
        }
        sum.AddRange(payload.ToArray());
        return Packets.Checksum(sum.ToArray());
    }

    /// <summary>Asserts a packet the egress built: exact length, IPv4 header checksum, and the transport checksum (ICMPv4 without pseudo-header).</summary>
    public static void AssertValid(byte[] p)
    {
        Assert.Equal(TotalLength(p), p.Length);
        byte proto = Protocol(p);
        if (IsV4(p))
        {
            Assert.Equal(0, Packets.Checksum(p.AsSpan(0, 20)));
            if (proto == 1) { Assert.Equal(0, Packets.Checksum(Payload(p))); return; }
        }
        Assert.Equal(0, TransportChecksum(p, proto));
    }
}

/// <summary>A UDP echo server on a loopback address that records where each datagram came from.</summary>
internal sealed class UdpEchoServer : IDisposable
{
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    public readonly ConcurrentQueue<IPEndPoint> Senders = new();

    public UdpEchoServer(IPAddress address)
    {
        _socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(new IPEndPoint(address, 0));
        EndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        _ = Run();
    }

    public IPEndPoint EndPoint { get; }
    public ushort Port => (ushort)EndPoint.Port;

    private async Task Run()
    {
        var buffer = new byte[65536];
        try
        {
            while (true)
            {
                var r = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(EndPoint.Address, 0), _stop.Token);
                var from = (IPEndPoint)r.RemoteEndPoint;
                Senders.Enqueue(from);
                await _socket.SendToAsync(buffer.AsMemory(0, r.ReceivedBytes), SocketFlags.None, from, _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
    }
}
