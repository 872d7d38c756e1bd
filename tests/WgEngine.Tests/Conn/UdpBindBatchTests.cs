using System.Net;
using System.Net.Sockets;
using WgEngine.Conn;

namespace WgEngine.Tests.Conn;

/// <summary>
/// UdpBind's batch calls over real loopback sockets, with recvmmsg/sendmmsg (Linux) and with the
/// managed fallback: every datagram arrives intact with its own source, errors stay per datagram.
/// </summary>
public class UdpBindBatchTests
{
    private static byte[] Payload(int index, int size)
    {
        var p = new byte[size];
        for (int i = 0; i < size; i++) p[i] = (byte)(index * 31 + i);
        return p;
    }

    private static Socket Peer(AddressFamily family)
    {
        var s = new Socket(family, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
        s.Bind(new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Loopback : IPAddress.IPv6Loopback, 0));
        return s;
    }

    /// <summary>Receives until <paramref name="want"/> datagrams are in or 10 s pass (the bind is closed then).</summary>
    private static List<(byte[] Data, IPEndPoint From)> ReceiveAll(UdpBind bind, int want, out int largestBatch)
    {
        const int B = 16;
        var buffers = new Memory<byte>[B];
        var from = new SocketAddress[B];
        for (int i = 0; i < B; i++) { buffers[i] = new byte[2048]; from[i] = new SocketAddress(AddressFamily.InterNetworkV6); }
        var lengths = new int[B];
        var got = new List<(byte[], IPEndPoint)>();
        largestBatch = 0;
        using var timeout = new CancellationTokenSource(10_000);
        using var _ = timeout.Token.Register(bind.Dispose);
        while (got.Count < want)
        {
            int n = bind.ReceiveBatch(buffers, from, lengths);
            Assert.True(n > 0, $"receive ended after {got.Count} of {want} datagrams");
            largestBatch = Math.Max(largestBatch, n);
            for (int i = 0; i < n; i++) got.Add((buffers[i].Span[..lengths[i]].ToArray(), bind.ToEndPoint(from[i])));
        }
        return got;
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void ReceivesABatchFromManySourcesIntact(bool native, bool dualStack)
    {
        using var bind = new UdpBind(0, dualStack ? null : IPAddress.Loopback, native);
        Assert.Equal(native && OperatingSystem.IsLinux(), bind.NativeBatching);
        var families = dualStack ? new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 } : new[] { AddressFamily.InterNetwork };
        var senders = new List<Socket>();
        for (int i = 0; i < 3; i++) foreach (var f in families) senders.Add(Peer(f));
        try
        {
            const int N = 40;
            var expected = new Dictionary<string, IPEndPoint>();
            for (int i = 0; i < N; i++)
            {
                var s = senders[i % senders.Count];
                var data = Payload(i, 20 + i * 37);
                var target = s.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Loopback : IPAddress.IPv6Loopback;
                s.SendTo(data, new IPEndPoint(target, bind.Port));
                expected[Convert.ToHexString(data)] = (IPEndPoint)s.LocalEndPoint!;
            }
            var got = ReceiveAll(bind, N, out int largest);
            Assert.Equal(N, got.Count);
            foreach (var (data, from) in got)
            {
                Assert.True(expected.Remove(Convert.ToHexString(data), out var source), "a datagram arrived altered or twice");
                Assert.Equal(source, from);   // v4 senders show as IPv4 even on the dual-stack socket
            }
            // All were queued before the first call: a batching bind takes several per call.
            if (bind.NativeBatching) Assert.True(largest > 1, "recvmmsg returned one datagram per call");
            else Assert.Equal(1, largest);
        }
        finally
        {
            foreach (var s in senders) s.Dispose();
        }
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void SendsABatchToManyDestinationsIntact(bool native, bool dualStack)
    {
        using var bind = new UdpBind(0, dualStack ? null : IPAddress.Loopback, native);
        var families = dualStack ? new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 } : new[] { AddressFamily.InterNetwork };
        var receivers = new List<Socket>();
        foreach (var f in families) { receivers.Add(Peer(f)); receivers.Add(Peer(f)); }
        try
        {
            const int N = 100;   // more than one system call's worth (UdpBind.MaxBatch)
            var datagrams = new ReadOnlyMemory<byte>[N];
            var to = new SocketAddress[N];
            for (int i = 0; i < N; i++)
            {
                datagrams[i] = Payload(i, 1 + i * 13);
                to[i] = bind.ToSocketAddress((IPEndPoint)receivers[i % receivers.Count].LocalEndPoint!);
            }
            var sent = new bool[N];
            Assert.Equal(N, bind.SendBatch(datagrams, to, sent));
            Assert.All(sent, Assert.True);

            var buffer = new byte[4096];
            for (int r = 0; r < receivers.Count; r++)
            {
                for (int i = r; i < N; i += receivers.Count)
                {
                    EndPoint source = new IPEndPoint(receivers[r].AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
                    int n = receivers[r].ReceiveFrom(buffer, ref source);
                    Assert.Equal(datagrams[i].ToArray(), buffer[..n]);   // loopback keeps order per destination
                    Assert.Equal(bind.Port, ((IPEndPoint)source).Port);
                }
            }
        }
        finally
        {
            foreach (var s in receivers) s.Dispose();
        }
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void RunsOfEqualSizeDatagramsArriveAsSeparateDatagramsInOrder(bool segmentation, bool dualStack)
    {
        using var bind = new UdpBind(0, dualStack ? null : IPAddress.Loopback) { UdpSegmentation = segmentation };
        Assert.Equal(segmentation && OperatingSystem.IsLinux(), bind.UdpSegmentation);
        using var r1 = Peer(AddressFamily.InterNetwork);
        using var r2 = Peer(AddressFamily.InterNetwork);
        var to1 = bind.ToSocketAddress((IPEndPoint)r1.LocalEndPoint!);
        var to2 = bind.ToSocketAddress((IPEndPoint)r2.LocalEndPoint!);
        // 20 full-size datagrams to r1 ending in a short one (one GSO send), 2 to r2, then 10 more to r1.
        var list = new List<(byte[] Data, SocketAddress To)>();
        for (int i = 0; i < 20; i++) list.Add((Payload(i, 1452), to1));
        list.Add((Payload(20, 77), to1));
        list.Add((Payload(21, 1452), to2));
        list.Add((Payload(22, 1452), to2));
        for (int i = 23; i < 33; i++) list.Add((Payload(i, 1000), to1));
        var sent = new bool[list.Count];
        Assert.Equal(list.Count, bind.SendBatch(list.Select(x => (ReadOnlyMemory<byte>)x.Data).ToArray(), list.Select(x => x.To).ToArray(), sent));
        Assert.All(sent, Assert.True);
        Assert.Equal(segmentation && OperatingSystem.IsLinux(), bind.UdpSegmentation);   // loopback takes GSO: not switched off

        var buffer = new byte[4096];
        foreach (var (receiver, target) in new[] { (r1, to1), (r2, to2) })
            foreach (var (data, _) in list.Where(x => x.To == target))
            {
                int n = receiver.Receive(buffer);   // one datagram per segment, not one 30 KB datagram
                Assert.Equal(data, buffer[..n]);
            }
        Assert.Equal(0, r1.Available);
        Assert.Equal(0, r2.Available);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AFailingDatagramDoesNotStopTheRestOfTheBatch(bool native)
    {
        using var bind = new UdpBind(0, IPAddress.Loopback, native);
        using var receiver = Peer(AddressFamily.InterNetwork);
        var dest = bind.ToSocketAddress((IPEndPoint)receiver.LocalEndPoint!);
        // 70000 bytes exceed the UDP maximum: the kernel refuses that one datagram (EMSGSIZE).
        var datagrams = new ReadOnlyMemory<byte>[] { Payload(0, 100), Payload(1, 200), new byte[70_000], Payload(3, 300) };
        var to = new[] { dest, dest, dest, dest };
        var sent = new bool[4];
        Assert.Equal(3, bind.SendBatch(datagrams, to, sent));
        Assert.Equal(new[] { true, true, false, true }, sent);
        var buffer = new byte[4096];
        foreach (int i in new[] { 0, 1, 3 })
        {
            int n = receiver.Receive(buffer);
            Assert.Equal(datagrams[i].ToArray(), buffer[..n]);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AClosedBindSendsNothingAndReceiveEnds(bool native)
    {
        var bind = new UdpBind(0, IPAddress.Loopback, native);
        using var receiver = Peer(AddressFamily.InterNetwork);
        var dest = bind.ToSocketAddress((IPEndPoint)receiver.LocalEndPoint!);
        var buffers = new Memory<byte>[] { new byte[2048], new byte[2048] };
        var from = new[] { new SocketAddress(AddressFamily.InterNetworkV6), new SocketAddress(AddressFamily.InterNetworkV6) };
        var lengths = new int[2];

        // A receiver blocked in the batch call is woken by closing the bind.
        // (A thread in a native call shows as Running, so "entered" is the closest observable state;
        // a call that starts after the close must end with -1 just the same.)
        int result = 0;
        using var entered = new ManualResetEventSlim();
        var thread = new Thread(() => { entered.Set(); result = bind.ReceiveBatch(buffers, from, lengths); }) { IsBackground = true };
        thread.Start();
        Assert.True(entered.Wait(5000), "the receiver thread did not start");
        Assert.True(thread.IsAlive, "the receive returned without a datagram");
        bind.Dispose();
        Assert.True(thread.Join(5000), "closing the bind did not wake the receiver");
        Assert.Equal(-1, result);

        Assert.Equal(-1, bind.ReceiveBatch(buffers, from, lengths));
        var sent = new bool[] { true, true };
        Assert.Equal(0, bind.SendBatch(new ReadOnlyMemory<byte>[] { new byte[10], new byte[10] }, new[] { dest, dest }, sent));
        Assert.Equal(new[] { false, false }, sent);
    }

    [Fact]
    public void BindsWithoutBatchSupportUseTheSingleDatagramCalls()
    {
        var network = new ChannelNetwork();
        using var a = network.CreateBind(51001);
        using var b = network.CreateBind(51002);
        IBind ia = a, ib = b;
        var to = ia.ToSocketAddress(new IPEndPoint(IPAddress.Loopback, 51002));
        var sent = new bool[3];
        Assert.Equal(3, ia.SendBatch(new ReadOnlyMemory<byte>[] { Payload(0, 5), Payload(1, 6), Payload(2, 7) }, new[] { to, to, to }, sent));
        Assert.All(sent, Assert.True);

        var buffers = new Memory<byte>[] { new byte[64], new byte[64] };
        var from = new[] { new SocketAddress(AddressFamily.InterNetworkV6), new SocketAddress(AddressFamily.InterNetworkV6) };
        var lengths = new int[2];
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(1, ib.ReceiveBatch(buffers, from, lengths));
            Assert.Equal(Payload(i, 5 + i), buffers[0].Span[..lengths[0]].ToArray());
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, 51001), ib.ToEndPoint(from[0]));
        }
    }
}
