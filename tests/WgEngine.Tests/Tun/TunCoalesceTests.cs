using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using WgEngine.Net;
using WgEngine.Tun;

namespace WgEngine.Tests.Tun;

/// <summary>
/// Coalesced writes into a real TUN in a test namespace: a TCP connection the test drives by hand
/// (SYN, the kernel's SYN-ACK from the reader, then a burst of data segments through a write batch)
/// to a listener in the namespace, which reports the SHA-256 of what it read. With offloads on the
/// burst must reach the kernel as one TSO super-packet, and the kernel's TCP must take it intact;
/// with offloads off the same burst goes packet by packet, nothing is coalesced, and the data is
/// intact too.
/// </summary>
public class TunCoalesceTests
{
    private const byte Syn = 0x02, Ack = 0x10, Psh = 0x08;
    private const int Segments = 40, SegmentSize = 1000;

    /// <summary>A listener on net.1:5201 that reads <paramref name="bytes"/> bytes and prints their SHA-256;
    /// "ready" once it listens. Bounded: it gives up after 20 s.</summary>
    private static Process Listener(TestNamespace ns, string net, int bytes)
    {
        string code = "import socket,hashlib,sys\n" +
                      "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n" +
                      $"s.bind(('{net}.1',5201)); s.listen(1); s.settimeout(20); print('ready',flush=True)\n" +
                      "c,_=s.accept(); c.settimeout(20); h=hashlib.sha256(); n=0\n" +
                      $"while n<{bytes}:\n d=c.recv(65536)\n if not d: break\n h.update(d); n+=len(d)\n" +
                      "print(n,h.hexdigest(),flush=True)\n";
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", ns.Name, "python3", "-c", code }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        Assert.Equal("ready", p.StandardOutput.ReadLine());
        return p;
    }

    private static byte[]? SynAck(TunTestSupport.RecordingSink sink, ushort port) =>
        sink.Packets.FirstOrDefault(p => p.Length >= 40 && p[0] == 0x45 && p[9] == 6
            && BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(22)) == port && p[33] == (Syn | Ack));

    /// <summary>The handshake and the burst; returns the listener's report and the expected one.</summary>
    /// <param name="alone">Each data segment in a flush of its own: written alone, never coalesced.</param>
    /// <param name="corruptAt">Before segment corruptAt (alone only), a copy of it with one payload byte changed and the
    /// checksum left as it was: only the kernel's own verification keeps it out of the stream.</param>
    private static (string Got, string Want) Transfer(TestNamespace ns, string net, TunEgress tun, TunTestSupport.RecordingSink sink,
        bool alone = false, int corruptAt = -1)
    {
        using var listener = Listener(ns, net, Segments * SegmentSize);
        try
        {
            ushort port = (ushort)Random.Shared.Next(20000, 60000);
            uint isn = (uint)Random.Shared.Next();
            var seg = new TunCoalescerTests.Seg(Src: $"{net}.2", Dst: $"{net}.1", SrcPort: port, Seq: isn, Id: 1,
                Payload: 0, Flags: Syn, AckNo: 0, Window: 65000, Timestamps: false);
            tun.Deliver(default, TunCoalescerTests.Packet(seg));
            Assert.True(TunTestSupport.WaitFor(() => SynAck(sink, port) is not null), "no SYN-ACK");
            uint ack = BinaryPrimitives.ReadUInt32BigEndian(SynAck(sink, port).AsSpan(24)) + 1;

            var batch = tun.CreateBatch();
            var data = new List<byte>();
            batch.Deliver(default, TunCoalescerTests.Packet(seg with { Seq = isn + 1, Id = 2, Flags = Ack, AckNo = ack }));
            for (int i = 0; i < Segments; i++)
            {
                var p = TunCoalescerTests.Packet(seg with
                {
                    Seq = isn + 1 + (uint)(i * SegmentSize), Id = (ushort)(3 + i), Payload = SegmentSize,
                    Flags = i == Segments - 1 ? (byte)(Ack | Psh) : Ack, AckNo = ack,
                });
                data.AddRange(p.AsSpan(40).ToArray());
                if (i == corruptAt)
                {
                    var bad = (byte[])p.Clone();
                    bad[^1] ^= 0x5A;
                    batch.Deliver(default, bad);
                    batch.Flush();
                }
                batch.Deliver(default, p);
                if (alone) batch.Flush();
            }
            batch.Flush();

            Assert.True(listener.WaitForExit(25_000), "the listener did not finish");
            string want = $"{data.Count} {Convert.ToHexStringLower(SHA256.HashData(data.ToArray()))}";
            string got = listener.StandardOutput.ReadLine() ?? "";
            if (got != want)
                foreach (var p in sink.Packets.Where(p => p.Length >= 40 && p[9] == 6))
                    Console.Error.WriteLine($"from kernel: flags {p[33]:x2} seq {BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(24))} ack {BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(28))} len {p.Length}");
            if (got != want) Console.Error.WriteLine(listener.StandardError.ReadToEnd());
            return (got, want);
        }
        finally
        {
            if (!listener.HasExited) listener.Kill();
        }
    }

    /// <summary>A TUN in a fresh namespace, the transfer through it (its data must arrive intact), then
    /// the egress's counters and whether it still coalesces.</summary>
    private static (TunCounters Counters, bool Coalescing) TransferThrough(bool offloads, int fault = 0, bool alone = false, int corruptAt = -1)
    {
        using var ns = new TestNamespace();
        string net = $"10.{Random.Shared.Next(100, 250)}.0";
        var sink = new TunTestSupport.RecordingSink();
        using var tun = ns.Inside(() => TunEgress.Create($"wgt{Random.Shared.Next(0x100000):x}", [IpPrefix.Parse($"{net}.1/24")], 1420, sink, offloads));
        Assert.Equal(offloads, tun.CoalescingEnabled);
        tun.SuperPacketFault = fault;
        var (got, want) = Transfer(ns, net, tun, sink, alone, corruptAt);
        Assert.Equal(want, got);
        Assert.Equal(2 + Segments + (corruptAt >= 0 ? 1 : 0), tun.Counters.ToHostPackets);
        Assert.Equal(0, tun.Counters.WriteErrors);
        return (tun.Counters, tun.CoalescingEnabled);
    }

    [TunFact]
    public void A_burst_of_tcp_segments_reaches_the_kernel_as_one_super_packet_and_intact()
    {
        var (counters, coalescing) = TransferThrough(offloads: true);
        Assert.Equal(1, counters.CoalescedWrites);
        Assert.Equal(Segments, counters.CoalescedPackets);
        Assert.Equal(0, counters.CoalesceFallbacks);
        Assert.Equal(0, counters.ChecksumsLeftToKernel);   // every merged segment was verified here
        Assert.True(coalescing);
    }

    [TunFact]
    public void Segments_written_alone_leave_their_checksums_to_the_kernel_which_drops_a_corrupt_one()
    {
        // Each segment alone: not summed here (the counter), yet the kernel verifies each: the corrupted copy of
        // segment 7 (a changed payload byte under the old checksum) is dropped, the good one after it is taken,
        // and the listener's hash matches the data.
        var (counters, coalescing) = TransferThrough(offloads: true, alone: true, corruptAt: 7);
        Assert.Equal(Segments + 1, counters.ChecksumsLeftToKernel);
        Assert.Equal(0, counters.CoalescedWrites);
        Assert.Equal(0, counters.WriteErrors);
        Assert.True(coalescing);
    }

    [TunFact]
    public void With_offloads_off_nothing_is_coalesced_and_the_data_is_intact()
    {
        var (counters, _) = TransferThrough(offloads: false);
        Assert.Equal(0, counters.CoalescedWrites);
        Assert.Equal(0, counters.CoalescedPackets);
    }

    [TunFact]
    public void A_refused_super_packet_is_written_packet_by_packet_and_coalescing_stops()
    {
        var (counters, coalescing) = TransferThrough(offloads: true, fault: TunNative.EINVAL);
        Assert.Equal(1, counters.CoalesceFallbacks);
        Assert.Equal(0, counters.CoalescedWrites);
        Assert.False(coalescing);
    }
}
