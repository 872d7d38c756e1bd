using System.Net;
using System.Net.Sockets;
using WgEngine.Conn;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Conn;

/// <summary>
/// Receive-side UDP GRO over loopback: a GSO send from one UdpBind stays one coalesced message on the
/// way to a GRO socket (the kernel does not split it for a socket with UDP_GRO), so the receiving bind
/// must split it. Each test checks that every segment arrives intact, in order, with its source, and
/// whether coalescing really happened (CoalescedDatagrams), so a GRO that silently stays off fails.
/// </summary>
public class UdpBindGroTests
{
    private static byte[] Payload(int index, int size)
    {
        var p = new byte[size];
        for (int i = 0; i < size; i++) p[i] = (byte)(index * 29 + i * 7);
        return p;
    }

    /// <summary>Sends <paramref name="list"/> with one SendBatch (GSO on: runs of equal size become one message).</summary>
    private static void SendAll(UdpBind sender, IPEndPoint to, IReadOnlyList<byte[]> list)
    {
        var target = sender.ToSocketAddress(to);
        var datagrams = list.Select(d => (ReadOnlyMemory<byte>)d).ToArray();
        var sent = new bool[list.Count];
        Assert.Equal(list.Count, sender.SendBatch(datagrams, Enumerable.Repeat(target, list.Count).ToArray(), sent));
    }

    /// <summary>Receives until <paramref name="want"/> datagrams are in; closes the bind after 10 s so a miss fails instead of hanging.</summary>
    private static List<(byte[] Data, IPEndPoint From)> ReceiveAll(IBind bind, int want, int batch)
    {
        var buffers = new Memory<byte>[batch];
        var from = new SocketAddress[batch];
        for (int i = 0; i < batch; i++) { buffers[i] = new byte[4096]; from[i] = new SocketAddress(AddressFamily.InterNetworkV6); }
        var lengths = new int[batch];
        var got = new List<(byte[], IPEndPoint)>();
        using var timeout = new CancellationTokenSource(10_000);
        using var _ = timeout.Token.Register(bind.Dispose);
        while (got.Count < want)
        {
            int n = bind.ReceiveBatch(buffers, from, lengths);
            Assert.True(n > 0, $"receive ended after {got.Count} of {want} datagrams: {string.Join(",", got.Select(g => g.Item1.Length))}");
            for (int i = 0; i < n; i++) got.Add((buffers[i].Span[..lengths[i]].ToArray(), bind.ToEndPoint(from[i])));
        }
        return got;
    }

    private static IPEndPoint LoopbackOf(UdpBind bind, bool v6) => new(v6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, bind.Port);

    [Theory]
    [InlineData(false, 8)]    // fewer caller buffers than segments: the rest wait in the bind for the next call
    [InlineData(true, 32)]
    [InlineData(false, 64)]
    public void GsoSendToAGroReceiverArrivesAsSeparateDatagramsInOrder(bool dualStack, int batch)
    {
        using var receiver = new UdpBind(0, dualStack ? null : IPAddress.Loopback);
        using var sender = new UdpBind(0, dualStack ? null : IPAddress.Loopback);
        Assert.Equal(OperatingSystem.IsLinux(), receiver.UdpGro);
        // 20 of 1452 B ending in a short one (odd last segment), a different size, then a lone datagram.
        var list = new List<byte[]>();
        for (int i = 0; i < 20; i++) list.Add(Payload(i, 1452));
        list.Add(Payload(20, 333));
        for (int i = 21; i < 31; i++) list.Add(Payload(i, 200));
        list.Add(Payload(31, 1));
        SendAll(sender, LoopbackOf(receiver, dualStack), list);

        var got = ReceiveAll(receiver, list.Count, batch);
        Assert.Equal(list.Count, got.Count);
        for (int i = 0; i < list.Count; i++)
        {
            Assert.Equal(list[i], got[i].Data);
            Assert.Equal(sender.Port, got[i].From.Port);
        }
        if (OperatingSystem.IsLinux())
            Assert.True(receiver.CoalescedDatagrams >= 21, $"GRO split only {receiver.CoalescedDatagrams} datagrams: coalescing is not on");
    }

    [Fact]
    public void WithGroOffTheKernelSplitsAndNothingIsCoalesced()
    {
        using var receiver = new UdpBind(0, IPAddress.Loopback, udpGro: false);
        using var sender = new UdpBind(0, IPAddress.Loopback);
        Assert.False(receiver.UdpGro);
        var list = Enumerable.Range(0, 12).Select(i => Payload(i, i == 11 ? 50 : 1000)).ToList();
        SendAll(sender, LoopbackOf(receiver, false), list);
        var got = ReceiveAll(receiver, list.Count, 32);
        Assert.Equal(list, got.Select(g => g.Data));
        Assert.Equal(0, receiver.CoalescedDatagrams);
    }

    [Fact]
    public void GroSwitchedOffAtRunTimeStillDeliversEveryDatagram()
    {
        using var receiver = new UdpBind(0, IPAddress.Loopback);
        using var sender = new UdpBind(0, IPAddress.Loopback);
        var first = Enumerable.Range(0, 10).Select(i => Payload(i, 700)).ToList();
        SendAll(sender, LoopbackOf(receiver, false), first);
        Assert.Equal(first, ReceiveAll(receiver, 10, 4).Select(g => g.Data));
        long coalesced = receiver.CoalescedDatagrams;
        if (OperatingSystem.IsLinux()) Assert.Equal(10, coalesced);

        receiver.UdpGro = false;
        Assert.False(receiver.UdpGro);
        var second = Enumerable.Range(10, 10).Select(i => Payload(i, 700)).ToList();
        SendAll(sender, LoopbackOf(receiver, false), second);
        Assert.Equal(second, ReceiveAll(receiver, 10, 4).Select(g => g.Data));
        Assert.Equal(coalesced, receiver.CoalescedDatagrams);   // the kernel split the second batch itself
    }

    [Fact]
    public void TheSingleDatagramCallSplitsCoalescedMessagesToo()
    {
        using var receiver = new UdpBind(0, IPAddress.Loopback);
        using var sender = new UdpBind(0, IPAddress.Loopback);
        var list = Enumerable.Range(0, 5).Select(i => Payload(i, i == 4 ? 10 : 900)).ToList();
        list.Add([]);   // an empty datagram is still one datagram
        list.Add(Payload(6, 3));
        SendAll(sender, LoopbackOf(receiver, false), list);
        var buffer = new byte[4096];
        var from = new SocketAddress(AddressFamily.InterNetworkV6);
        using var timeout = new CancellationTokenSource(10_000);
        using var _ = timeout.Token.Register(receiver.Dispose);
        foreach (var expected in list)
        {
            from.Size = from.Buffer.Length;
            int n = receiver.Receive(buffer, from);
            Assert.Equal(expected, buffer[..n]);
            Assert.Equal(sender.Port, receiver.ToEndPoint(from).Port);
        }
        if (OperatingSystem.IsLinux()) Assert.Equal(5, receiver.CoalescedDatagrams);
    }

    [Fact]
    public void RebindKeepsTheOffloadChoices()
    {
        using var bind = new RebindableBind(0, IPAddress.Loopback, udpGro: false) { UdpSegmentation = false };
        bind.Rebind(0);
        Assert.False(bind.UdpSegmentation);   // before the fix a new socket came back with GSO on
        Assert.False(bind.UdpGro);

        bind.UdpGro = true;
        bind.UdpSegmentation = true;
        bind.Rebind(0);
        Assert.Equal(OperatingSystem.IsLinux(), bind.UdpGro);
        Assert.Equal(OperatingSystem.IsLinux(), bind.UdpSegmentation);

        // And the GRO socket after the rebind really coalesces.
        using var sender = new UdpBind(0, IPAddress.Loopback);
        var list = Enumerable.Range(0, 6).Select(i => Payload(i, 1200)).ToList();
        SendAll(sender, new IPEndPoint(IPAddress.Loopback, bind.Port), list);
        Assert.Equal(list, ReceiveAll(bind, list.Count, 32).Select(g => g.Data));
        if (OperatingSystem.IsLinux()) Assert.Equal(6, bind.CoalescedDatagrams);
    }

    [HostFact(HostNeeds.Linux)]   // UDP GRO is Linux only
    public void TheCoalescedCountOfARebindableBindOnlyGrows()
    {
        using var bind = new RebindableBind(0, IPAddress.Loopback);
        using var sender = new UdpBind(0, IPAddress.Loopback);
        var list = Enumerable.Range(0, 6).Select(i => Payload(i, 1200)).ToList();
        SendAll(sender, new IPEndPoint(IPAddress.Loopback, bind.Port), list);
        Assert.Equal(list, ReceiveAll(bind, list.Count, 32).Select(g => g.Data));
        Assert.Equal(6, bind.CoalescedDatagrams);
        // A rebind (a port change) starts a new socket; the metric it feeds must not fall back to 0.
        bind.Rebind(0);
        Assert.Equal(6, bind.CoalescedDatagrams);
        SendAll(sender, new IPEndPoint(IPAddress.Loopback, bind.Port), list);
        Assert.Equal(list, ReceiveAll(bind, list.Count, 32).Select(g => g.Data));
        Assert.Equal(12, bind.CoalescedDatagrams);
    }

    // ---- the control message parser -------------------------------------------------------------

    /// <summary>A cmsghdr (LP64: u64 len, int level, int type) with an int payload, padded to 8.</summary>
    private static byte[] Cmsg(ulong len, int level, int type, int value, int room = 24)
    {
        var c = new byte[room];
        BitConverter.TryWriteBytes(c.AsSpan(0), len);
        BitConverter.TryWriteBytes(c.AsSpan(8), level);
        BitConverter.TryWriteBytes(c.AsSpan(12), type);
        if (room >= 20) BitConverter.TryWriteBytes(c.AsSpan(16), value);
        return c;
    }

    [Fact]
    public void AWellFormedGroCmsgGivesTheSegmentSize()
    {
        Assert.Equal(1452, UdpBind.GroSegmentSize(Cmsg(20, 17, 104, 1452)));
        // After an unrelated cmsg (SOL_IP, IP_TOS: 1 byte of data, CMSG_LEN 17, padded to 24).
        var tos = Cmsg(17, 0, 1, 0);
        Assert.Equal(1000, UdpBind.GroSegmentSize(tos.Concat(Cmsg(20, 17, 104, 1000)).ToArray()));
    }

    [Theory]
    [InlineData(20, 17, 103, 1452, 24)]   // UDP_SEGMENT, not UDP_GRO
    [InlineData(20, 0, 104, 1452, 24)]    // wrong level
    [InlineData(16, 17, 104, 1452, 24)]   // header only: no room for the int
    [InlineData(12, 17, 104, 1452, 24)]   // length shorter than a header
    [InlineData(40, 17, 104, 1452, 24)]   // length past the buffer
    [InlineData(20, 17, 104, 0, 24)]      // zero segment size
    [InlineData(20, 17, 104, -5, 24)]     // negative segment size
    [InlineData(20, 17, 104, 1452, 12)]   // buffer shorter than a header
    public void MalformedOrForeignCmsgsAreIgnored(ulong len, int level, int type, int value, int room)
    {
        Assert.Equal(0, UdpBind.GroSegmentSize(Cmsg(len, level, type, value, room)));
    }

    [Fact]
    public void AMalformedCmsgHidesWhatFollowsIt()
    {
        // A zero length would loop forever if trusted; the parser stops at it.
        var bad = Cmsg(0, 0, 1, 0);
        Assert.Equal(0, UdpBind.GroSegmentSize(bad.Concat(Cmsg(20, 17, 104, 1000)).ToArray()));
        Assert.Equal(0, UdpBind.GroSegmentSize(ReadOnlySpan<byte>.Empty));
    }
}
