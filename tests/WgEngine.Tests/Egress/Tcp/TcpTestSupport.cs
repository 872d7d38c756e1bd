using System.Buffers.Binary;
using System.Net;
using WgEngine.Egress;
using WgEngine.Egress.Tcp;
using WgEngine.Tests.PacketPlane;

namespace WgEngine.Tests.Egress.Tcp;

/// <summary>A segment the stack emitted, copied out and checked (IPv4 header and TCP checksums by the reference sum).</summary>
internal sealed record Seg(uint Seq, uint Ack, TcpFlags Flags, ushort Window, byte[] Payload, ushort Mss, int WindowScale,
    bool SackPermitted, uint[] Sack, byte[] Raw)
{
    public bool Has(TcpFlags f) => (Flags & f) != 0;
    public int SeqLength => Payload.Length + (Has(TcpFlags.Syn) ? 1 : 0) + (Has(TcpFlags.Fin) ? 1 : 0);

    /// <summary>Parses an emitted TCP packet; asserts both checksums with the test's own RFC 1071 implementation.</summary>
    public static Seg From(byte[] raw)
    {
        Assert.True(TcpSegment.TryParse(raw, out var s), "emitted packet does not parse as TCP");
        AssertChecksums(raw);
        var sack = new uint[s.SackBlocks.Length / 4];
        for (int i = 0; i < sack.Length; i++) sack[i] = BinaryPrimitives.ReadUInt32BigEndian(s.SackBlocks.Slice(4 * i));
        return new Seg(s.Seq, s.Ack, s.Flags, s.Window, s.Payload.ToArray(), s.Mss, s.WindowScale, s.SackPermitted, sack, raw);
    }

    public static void AssertChecksums(byte[] raw)
    {
        if (raw[0] >> 4 == 4)
        {
            Assert.True(TestPackets.V4HeaderValid(raw), "IPv4 header checksum");
            int total = (raw[2] << 8) | raw[3];
            Assert.Equal(raw.Length, total);
            var pseudo = new byte[12 + total - 20];
            raw.AsSpan(12, 8).CopyTo(pseudo);
            pseudo[9] = raw[9];
            pseudo[10] = (byte)((total - 20) >> 8); pseudo[11] = (byte)(total - 20);
            raw.AsSpan(20).CopyTo(pseudo.AsSpan(12));
            Assert.True(TestPackets.ReferenceSum(pseudo) == 0xFFFF, "TCP/IPv4 checksum");
        }
        else
        {
            Assert.Equal(raw.Length, 40 + ((raw[4] << 8) | raw[5]));
            Assert.True(TestPackets.ReferenceSum(TestPackets.WithPseudoHeaderV6(raw.AsSpan(8, 16), raw.AsSpan(24, 16), raw[6], raw.AsSpan(40))) == 0xFFFF,
                "upper-layer/IPv6 checksum");
        }
    }
}

internal sealed class CaptureOutput : ITcpOutput
{
    public readonly List<byte[]> Packets = new();
    public void Emit(ReadOnlySpan<byte> ipPacket) { lock (Packets) Packets.Add(ipPacket.ToArray()); }

    public List<byte[]> Take() { lock (Packets) { var l = Packets.ToList(); Packets.Clear(); return l; } }
}

/// <summary>
/// Drives one <see cref="TcpConnection"/> as the peer would: builds the peer's segments with the stack's
/// own writer, feeds them in, and reads what the stack emitted. The clock is a plain TimeSpan the test moves.
/// </summary>
internal sealed class ConnHarness : IDisposable
{
    public readonly CaptureOutput Out = new();
    public readonly EgressCounters Counters = new();
    public readonly EgressOptions Options;
    public readonly byte[] Peer, Remote;
    public const ushort PeerPort = 40000, RemotePort = 8080;
    public const uint PeerIss = 1_000_000, OurIss = 0xFFFF_FF00; // our ISS wraps within the first 256 bytes
    public TimeSpan Now = TimeSpan.FromSeconds(1);
    public TcpConnection Conn = null!;
    /// <summary>The peer's next sequence number and what it has received in order from us.</summary>
    public uint PeerNxt = PeerIss + 1, PeerRcvNxt;
    public readonly List<byte> Received = new();

    public ConnHarness(bool v6 = false, int buffer = 64 * 1024, int idleMinutes = 5)
    {
        Options = new EgressOptions { TcpBufferBytes = buffer, TcpIdleTimeout = TimeSpan.FromMinutes(idleMinutes), TcpTimeWait = TimeSpan.FromSeconds(60) };
        Peer = IPAddress.Parse(v6 ? "fd00:8::2" : "10.8.0.2").GetAddressBytes();
        Remote = IPAddress.Parse(v6 ? "2001:db8::10" : "192.0.2.10").GetAddressBytes();
    }

    public byte[] Packet(uint seq, uint ack, TcpFlags flags, ushort window, ReadOnlySpan<byte> payload = default,
        ushort mss = 0, int wscale = -1, bool sackOk = false, uint[]? sack = null)
    {
        var opts = new TcpOptionsOut { Mss = mss, WindowScale = wscale, SackPermitted = sackOk, Sack = sack };
        var buf = new byte[TcpPacketWriter.MaxHeaders + payload.Length];
        int hl = TcpPacketWriter.WriteHeaders(buf, Peer, Remote, PeerPort, RemotePort, seq, ack, flags, window, opts, payload.Length);
        payload.CopyTo(buf.AsSpan(hl));
        TcpPacketWriter.Finish(buf, hl + payload.Length);
        return buf.AsSpan(0, hl + payload.Length).ToArray();
    }

    public void Feed(byte[] packet)
    {
        Assert.True(TcpSegment.TryParse(packet, out var s));
        Conn.OnSegment(s, Now);
    }

    /// <summary>The peer's SYN creates the connection (Connecting: nothing is answered yet).</summary>
    public void Syn(ushort mss = 1460, int wscale = 7, bool sackOk = true, ushort window = 65535)
    {
        var syn = Packet(PeerIss, 0, TcpFlags.Syn, window, default, mss, wscale, sackOk);
        Assert.True(TcpSegment.TryParse(syn, out var s));
        Conn = new TcpConnection(Out, Options, Counters, s, OurIss, Now);
    }

    /// <summary>SYN, host connect succeeds, SYN-ACK checked, the peer's ACK: Established.</summary>
    public Seg Establish(ushort mss = 1460, int wscale = 7, bool sackOk = true, ushort window = 65535, int peerWindowAfter = 65535)
    {
        Syn(mss, wscale, sackOk, window);
        Conn.HostConnected(Now);
        var synAck = Assert.Single(Take());
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(PeerIss + 1, synAck.Ack);
        PeerRcvNxt = synAck.Seq + 1;
        Ack(peerWindowAfter);
        Assert.Equal(TcpState.Established, Conn.State);
        return synAck;
    }

    /// <summary>The peer acknowledges everything it has, advertising <paramref name="window"/> (already scaled by the peer's shift 7 if it offered one).</summary>
    public void Ack(int windowBytes = 65535, int shift = 7) =>
        Feed(Packet(PeerNxt, PeerRcvNxt, TcpFlags.Ack, (ushort)Math.Min(windowBytes >> shift, 65535)));

    public void AckUpTo(uint ack, int windowBytes = 65535, int shift = 7) =>
        Feed(Packet(PeerNxt, ack, TcpFlags.Ack, (ushort)Math.Min(windowBytes >> shift, 65535)));

    /// <summary>The peer sends data at its next sequence number.</summary>
    public void SendData(ReadOnlySpan<byte> data, TcpFlags extra = 0, int windowBytes = 65535)
    {
        Feed(Packet(PeerNxt, PeerRcvNxt, TcpFlags.Ack | extra, (ushort)(windowBytes >> 7), data));
        PeerNxt += (uint)data.Length + ((extra & TcpFlags.Fin) != 0 ? 1u : 0u);
    }

    /// <summary>Emitted segments since the last call, parsed and checksum-checked; in-order payload is collected into <see cref="Received"/>.</summary>
    public List<Seg> Take()
    {
        var list = new List<Seg>();
        foreach (var raw in Out.Take())
        {
            var s = Seg.From(raw);
            if (s.Payload.Length > 0 && s.Seq == PeerRcvNxt) { Received.AddRange(s.Payload); PeerRcvNxt += (uint)s.Payload.Length; }
            if (s.Has(TcpFlags.Fin) && s.Seq + (uint)s.Payload.Length == PeerRcvNxt) PeerRcvNxt++;
            list.Add(s);
        }
        return list;
    }

    /// <summary>Everything the host side can read now, consumed.</summary>
    public byte[] HostRead()
    {
        var all = new List<byte>();
        while (Conn.ReceivedCount > 0)
        {
            var m = Conn.ReceivedReadable;
            all.AddRange(m.ToArray());
            Conn.ConsumeReceived(m.Length, Now);
        }
        return all.ToArray();
    }

    public void Advance(TimeSpan by) { Now += by; Conn.OnTimer(Now); }

    public void Dispose() => Conn?.Dispose();
}
