using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using WgEngine.Egress;
using WgEngine.Egress.Tcp;
using WgEngine.Tests.PacketPlane;

namespace WgEngine.Tests.Egress.Tcp;

/// <summary>
/// TcpEgress with real sockets: a scripted peer speaks TCP through the egress to a TcpListener on loopback
/// (the egress policy is the dispatcher's job, so 127.0.0.1 / ::1 is a fair destination here).
/// </summary>
public class TcpLoopbackTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(false, 4 * 1024 * 1024)]
    [InlineData(true, 1024 * 1024)]
    public async Task TransfersBothWaysWithMatchingHashes(bool v6, int size)
    {
        var loopback = v6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;
        using var listener = new TcpListener(loopback, 0);
        listener.Start();
        var upload = TestPackets.Data(size, 1);
        var download = TestPackets.Data(size, 2);

        var server = Task.Run(async () =>
        {
            using var c = await listener.AcceptTcpClientAsync();
            var s = c.GetStream();
            var send = Task.Run(async () => { await s.WriteAsync(download); c.Client.Shutdown(SocketShutdown.Send); });
            using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buf = new byte[65536];
            long total = 0;
            int n;
            while ((n = await s.ReadAsync(buf)) > 0) { h.AppendData(buf, 0, n); total += n; }
            await send;
            return (total, h.GetHashAndReset());
        });

        var counters = new EgressCounters();
        var peer = new ScriptedPeer(IPAddress.Parse(v6 ? "fd00:8::2" : "10.8.0.2"), loopback, (ushort)((IPEndPoint)listener.LocalEndpoint).Port);
        using (var egress = new TcpEgress(peer, new EgressOptions(), counters))
        {
            peer.Egress = egress;
            peer.Connect(TimeSpan.FromSeconds(10));
            peer.Run(upload, p => p.FinAcked && p.FinReceived, Limit);

            var (total, hash) = await server.WaitAsync(Limit);
            Assert.Equal(size, total);
            Assert.Equal(SHA256.HashData(upload), hash);
            Assert.Equal(size, peer.Received);
            Assert.Equal(SHA256.HashData(download), peer.ReceivedHash());
            Assert.Equal(1, counters.TcpOpened);
            Wait.Until(() => counters.TcpActive == 0, "flow no longer active");
        }
    }

    [Fact]
    public async Task LossBothWaysIsRepairedEndToEnd()
    {
        const int size = 1024 * 1024;
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var upload = TestPackets.Data(size, 5);
        var download = TestPackets.Data(size, 6);
        var server = Task.Run(async () =>
        {
            using var c = await listener.AcceptTcpClientAsync();
            var s = c.GetStream();
            var send = Task.Run(async () => { await s.WriteAsync(download); c.Client.Shutdown(SocketShutdown.Send); });
            using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buf = new byte[65536];
            int n;
            while ((n = await s.ReadAsync(buf)) > 0) h.AppendData(buf, 0, n);
            await send;
            return h.GetHashAndReset();
        });

        var counters = new EgressCounters();
        var peer = new ScriptedPeer(IPAddress.Parse("10.8.0.2"), IPAddress.Loopback, (ushort)((IPEndPoint)listener.LocalEndpoint).Port) { DropEvery = 37 };
        using var egress = new TcpEgress(peer, new EgressOptions(), counters);
        peer.Egress = egress;
        peer.Connect(TimeSpan.FromSeconds(10));
        peer.Run(upload, p => p.FinAcked && p.FinReceived, Limit);
        Assert.Equal(SHA256.HashData(upload), await server.WaitAsync(Limit));
        Assert.Equal(SHA256.HashData(download), peer.ReceivedHash());
        Assert.True(counters.TcpRetransmits > 0);                 // the egress had to repair its direction
    }

    [Fact]
    public async Task SlowHostReaderClosesTheWindowAndTheTransferResumes()
    {
        const int buffer = 64 * 1024;
        int size = 24 * 1024 * 1024;                              // more than loopback socket buffers can swallow
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Server.ReceiveBufferSize = 8192;
        listener.Start();
        var upload = TestPackets.Data(size, 3);
        var startReading = new TaskCompletionSource();

        var server = Task.Run(async () =>
        {
            using var c = await listener.AcceptTcpClientAsync();
            await startReading.Task;                              // the host application does not read for now
            var s = c.GetStream();
            using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buf = new byte[65536];
            long total = 0;
            int n;
            while ((n = await s.ReadAsync(buf)) > 0) { h.AppendData(buf, 0, n); total += n; }
            c.Client.Shutdown(SocketShutdown.Send);
            return (total, h.GetHashAndReset());
        });

        var counters = new EgressCounters();
        var peer = new ScriptedPeer(IPAddress.Parse("10.8.0.2"), IPAddress.Loopback, (ushort)((IPEndPoint)listener.LocalEndpoint).Port);
        using var egress = new TcpEgress(peer, new EgressOptions { TcpBufferBytes = buffer }, counters);
        peer.Egress = egress;
        peer.Connect(TimeSpan.FromSeconds(10));

        // Phase 1: the host does not read. The egress must shut its window and stop taking data.
        peer.Run(upload, p => p.LongestStall > TimeSpan.FromMilliseconds(500), Limit, fin: false);
        Assert.Equal(0u, peer.PeerWindow);
        Assert.True(peer.AckedAtStall < size - 8 * 1024 * 1024, $"acked {peer.AckedAtStall} before stalling");
        uint stalledAt = peer.AckedBytes;

        // Phase 2: the host reads; the window reopens and everything arrives intact.
        startReading.SetResult();
        peer.Run(upload, p => p.FinAcked && p.FinReceived, Limit);
        Assert.True(peer.AckedBytes > stalledAt);
        var (total, hash) = await server.WaitAsync(Limit);
        Assert.Equal(size, total);
        Assert.Equal(SHA256.HashData(upload), hash);
    }

    [Fact]
    public void ClosedPortIsRefusedFast()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();                                             // nothing listens there now
        var counters = new EgressCounters();
        var peer = new ScriptedPeer(IPAddress.Parse("10.8.0.2"), IPAddress.Loopback, (ushort)port);
        using var egress = new TcpEgress(peer, new EgressOptions(), counters);
        peer.Egress = egress;
        var ex = Assert.Throws<InvalidOperationException>(() => peer.Connect(TimeSpan.FromSeconds(5)));
        Assert.Contains("refused", ex.Message);
        Assert.Equal(1, counters.TcpRefused);
    }
}
