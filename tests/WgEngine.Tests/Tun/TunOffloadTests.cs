using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;
using WgEngine.Tun;

namespace WgEngine.Tests.Tun;

/// <summary>Offloads on a real TUN in a test namespace: what the kernel accepted, UDP super-packets (USO)
/// from a socket in the namespace arriving as valid MTU-sized datagrams, partial checksums completed,
/// and the same with offloads off.</summary>
public class TunOffloadTests
{
    /// <summary>Sends one UDP datagram of <paramref name="size"/> bytes to net.9:9999 from inside the
    /// namespace, with UDP_SEGMENT (linux/udp.h: SOL_UDP 17, UDP_SEGMENT 103) when segment > 0.</summary>
    private static void SendUdp(TestNamespace ns, string net, int size, int segment)
    {
        string code = "import socket\n" +
                      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" +
                      (segment > 0 ? $"s.setsockopt(17,103,{segment})\n" : "") +
                      $"s.sendto(bytes(i%251 for i in range({size})),('{net}.9',9999))\n";
        var r = ns.Exec("python3", "-c", code);
        Assert.True(r.Code == 0, $"python3 exited {r.Code}");
    }

    private static byte[][] UdpTo9999(TunTestSupport.RecordingSink sink) =>
        sink.Packets.Where(p => p.Length >= 28 && p[0] == 0x45 && p[9] == 17 && BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(22)) == 9999).ToArray();

    private static void AssertValidUdp(byte[] p, int payloadLength)
    {
        Assert.Equal(p.Length, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(2)));
        Assert.Equal(0xFFFF, TunSegmenterTests.NaiveFold(TunSegmenterTests.NaiveSum(p.AsSpan(0, 20))));
        Assert.Equal(8 + payloadLength, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(24)));
        Assert.True(TunSegmenterTests.TransportChecksumValid(p, 20, 17), "UDP checksum");
    }

    [TunFact]
    public void Offloads_are_on_by_default_and_a_udp_super_packet_arrives_as_valid_datagrams()
    {
        using var ns = new TestNamespace();
        int o = Random.Shared.Next(100, 250);
        var sink = new TunTestSupport.RecordingSink();
        using var tun = ns.Inside(() => TunEgress.Create($"wgt{Random.Shared.Next(0x100000):x}", [IpPrefix.Parse($"10.{o}.0.1/24")], 1420, sink));
        uint tso = TunNative.TUN_F_CSUM | TunNative.TUN_F_TSO4 | TunNative.TUN_F_TSO6;
        Assert.Equal(tso, tun.Offloads & tso);

        // 5 x 1000 + 500 bytes in one send: with USO the kernel hands over one super-packet.
        SendUdp(ns, $"10.{o}.0", 5500, 1000);
        Assert.True(TunTestSupport.WaitFor(() => UdpTo9999(sink).Length >= 6), "segments missing");
        var got = UdpTo9999(sink);
        Assert.Equal(6, got.Length);
        var payload = new List<byte>();
        for (int i = 0; i < 6; i++)
        {
            AssertValidUdp(got[i], i < 5 ? 1000 : 500);
            payload.AddRange(got[i].AsSpan(28).ToArray());
        }
        Assert.Equal(Enumerable.Range(0, 5500).Select(i => (byte)(i % 251)), payload);
        if ((tun.Offloads & TunNative.TUN_F_USO4) != 0) Assert.True(tun.Counters.GsoReads >= 1, "USO is on but no super-packet was read");
        Assert.Equal(0, tun.Counters.Malformed);

        // One plain datagram: with checksum offload the kernel leaves it partial (NEEDS_CSUM); it must leave complete.
        int before = got.Length;
        SendUdp(ns, $"10.{o}.0", 333, 0);
        Assert.True(TunTestSupport.WaitFor(() => UdpTo9999(sink).Length > before));
        AssertValidUdp(UdpTo9999(sink)[before], 333);
    }

    [TunFact]
    public void With_offloads_off_there_is_no_vnet_header_and_the_kernel_segments()
    {
        using var ns = new TestNamespace();
        int o = Random.Shared.Next(100, 250);
        var sink = new TunTestSupport.RecordingSink();
        using var tun = ns.Inside(() => TunEgress.Create($"wgt{Random.Shared.Next(0x100000):x}", [IpPrefix.Parse($"10.{o}.0.1/24")], 1420, sink, offloads: false));
        Assert.Equal(0u, tun.Offloads);

        SendUdp(ns, $"10.{o}.0", 3500, 1000);
        Assert.True(TunTestSupport.WaitFor(() => UdpTo9999(sink).Length >= 4), "datagrams missing");
        var got = UdpTo9999(sink);
        for (int i = 0; i < 4; i++) AssertValidUdp(got[i], i < 3 ? 1000 : 500);
        Assert.Equal(0, tun.Counters.GsoReads);

        // Writes without the header: a ping from a peer is answered.
        var request = Packets.EchoRequestV4($"10.{o}.0.2", $"10.{o}.0.1", 0x77, 1);
        tun.Deliver(default(WgKey), request);
        Assert.True(TunTestSupport.WaitFor(() => sink.Packets.Any(p => p[9] == 1 && p[20] == 0)), "no echo reply");
    }
}

/// <summary>The fallbacks when the kernel refuses offload sets (it answers EINVAL to any unknown TUN_F_ bit,
/// drivers/net/tun.c set_offload), driven through such a bit.</summary>
public class TunOffloadFallbackTests
{
    private const uint Unknown = 0x4000_0000;
    private const uint Tso = TunNative.TUN_F_CSUM | TunNative.TUN_F_TSO4 | TunNative.TUN_F_TSO6;

    /// <summary>The kernel's own record of the TUN's IFF_* flags (sysfs tun_flags, hex).</summary>
    private static int KernelFlags(TestNamespace ns, string name) =>
        Convert.ToInt32(ns.Exec("cat", $"/sys/class/net/{name}/tun_flags").Output.Trim(), 16);

    private static TunInterface Create(TestNamespace ns, string name, uint[] sets) =>
        ns.Inside(() => TunInterface.Create(name, [WgEngine.Net.IpPrefix.Parse($"10.{Random.Shared.Next(100, 250)}.0.1/24")], 1400, offloadSets: sets));

    [TunFact]
    public void A_refused_set_falls_back_to_the_next_one()
    {
        using var ns = new TestNamespace();
        string name = $"wgt{Random.Shared.Next(0x100000):x}";
        using var tun = Create(ns, name, [Tso | Unknown, Tso]);
        Assert.Equal(Tso, tun.Offloads);
        Assert.True(tun.VnetHeader);
        Assert.NotEqual(0, KernelFlags(ns, name) & TunNative.IFF_VNET_HDR);
    }

    [TunFact]
    public void When_every_set_is_refused_the_interface_is_made_again_without_a_vnet_header_and_configured()
    {
        using var ns = new TestNamespace();
        string name = $"wgt{Random.Shared.Next(0x100000):x}";
        using var tun = Create(ns, name, [Tso | Unknown, Unknown]);
        Assert.Equal(0u, tun.Offloads);
        Assert.False(tun.VnetHeader);
        Assert.Equal(TunNative.IFF_TUN | TunNative.IFF_NO_PI, KernelFlags(ns, name));
        var link = ns.Exec("ip", "-o", "link", "show", "dev", name).Output;
        Assert.Contains("mtu 1400", link);
        Assert.Contains(",UP", link);
        Assert.Single(ns.Exec("ip", "-o", "link", "show").Output.Split('\n'), l => l.Contains($": {name}:"));
    }
}
