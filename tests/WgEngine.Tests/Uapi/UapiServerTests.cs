using System.Net.Sockets;
using System.Text;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Uapi;

using WgEngine.Tests.Gateway;

namespace WgEngine.Tests.Uapi;

public sealed class UapiServerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("uapi-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Records what the server asked for; answers get with a fixed port.</summary>
    private sealed class RecordingTarget : IUapiTarget
    {
        public readonly List<UapiSetRequest> Applied = new();
        public int Answer;
        public UapiDeviceState GetUapiState() => new() { ListenPort = 4242 };
        public int ApplyUapi(UapiSetRequest request)
        {
            lock (Applied) Applied.Add(request);
            return Answer;
        }
    }

    private static async Task<string> ExchangeAsync(string path, string request, bool halfClose = false)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(path));
        await s.SendAsync(Encoding.ASCII.GetBytes(request));
        if (halfClose) s.Shutdown(SocketShutdown.Send);
        var sb = new StringBuilder();
        var buf = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (true)
        {
            int n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
            if (n == 0) return sb.ToString();
            sb.Append(Encoding.ASCII.GetString(buf, 0, n));
            if (sb.ToString().EndsWith("\n\n", StringComparison.Ordinal)) return sb.ToString();
        }
    }

    [Fact]
    public async Task Serves_get_and_set_and_creates_an_owner_only_socket()
    {
        var path = Path.Combine(_dir, "a.sock");
        var target = new RecordingTarget();
        using (var server = UapiServer.Start(path, target))
        {
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal("listen_port=4242\nerrno=0\n\n", await ExchangeAsync(path, "get=1\n\n"));
            Assert.Equal("errno=0\n\n", await ExchangeAsync(path, "set=1\nlisten_port=9\n\n"));
            Assert.Equal(9, Assert.Single(target.Applied).ListenPort);
            target.Answer = UapiErrno.PortInUse;
            Assert.Equal("errno=-98\n\n", await ExchangeAsync(path, "set=1\nlisten_port=10\n\n"));
        }
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task Several_operations_share_one_connection_and_a_rejected_set_is_skipped_to_its_end()
    {
        var path = Path.Combine(_dir, "b.sock");
        using var server = UapiServer.Start(path, new RecordingTarget());
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(path));
        await s.SendAsync(Encoding.ASCII.GetBytes("set=1\nbogus=1\nlisten_port=1\n\nget=1\n\n"));
        s.Shutdown(SocketShutdown.Send);
        var all = new StringBuilder();
        var buf = new byte[4096];
        int n;
        while ((n = await s.ReceiveAsync(buf)) > 0) all.Append(Encoding.ASCII.GetString(buf, 0, n));
        Assert.Equal("errno=-22\n\nlisten_port=4242\nerrno=0\n\n", all.ToString());
    }

    [Fact]
    public async Task A_silent_client_is_dropped_after_the_idle_timeout_without_blocking_others()
    {
        var path = Path.Combine(_dir, "c.sock");
        using var server = UapiServer.Start(path, new RecordingTarget(), TimeSpan.FromMilliseconds(300));
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await silent.ConnectAsync(new UnixDomainSocketEndPoint(path));
        Assert.Equal("listen_port=4242\nerrno=0\n\n", await ExchangeAsync(path, "get=1\n\n"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        Assert.Equal(0, await silent.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token));   // closed by the server
    }

    [Fact]
    public async Task A_target_that_throws_gives_an_errno_not_a_crash()
    {
        var path = Path.Combine(_dir, "d.sock");
        using var server = UapiServer.Start(path, new ThrowingTarget());
        Assert.Equal("errno=-55\n\n", await ExchangeAsync(path, "set=1\nlisten_port=1\n\n"));
        Assert.Equal("errno=-55\n\n", await ExchangeAsync(path, "set=1\nlisten_port=1\n\n"));
    }

    private sealed class ThrowingTarget : IUapiTarget
    {
        public UapiDeviceState GetUapiState() => new();
        public int ApplyUapi(UapiSetRequest request) => throw new InvalidOperationException("boom");
    }

    [Fact]
    public void Refuses_a_path_held_by_a_live_listener_and_replaces_a_stale_file()
    {
        var path = Path.Combine(_dir, "e.sock");
        using (var first = UapiServer.Start(path, new RecordingTarget()))
        {
            var e = Assert.Throws<WgException>(() => UapiServer.Start(path, new RecordingTarget()));
            Assert.Equal("UapiSocketInUse", e.ErrorId);
            Assert.True(UapiSocketFile.IsLive(path));
        }
        File.WriteAllText(path, "");                       // a leftover file nobody listens on
        using var second = UapiServer.Start(path, new RecordingTarget());
        Assert.True(UapiSocketFile.IsLive(path));
    }

    [Fact]
    public void The_facade_applies_uapi_changes_to_its_own_peer_table()
    {
        var path = Path.Combine(_dir, "f.sock");
        using var server = VPNServer.Start(new ServerOptions
        {
            ListenPort = 0, UapiPath = path, BackendFactory = c => new FakeBackend(c),
        });
        var key = WgPrivateKey.Generate().PublicKey;
        var client = new UapiClient(path);
        Assert.Equal(0, client.Set($"public_key={key.ToHex()}\nallowed_ip=10.8.0.7/32\n"));
        var peer = Assert.Single(server.GetPeers());
        Assert.Equal(key, peer.PublicKey);
        // The gateway's own address is not a peer's to take: refused with EINVAL, table unchanged.
        Assert.Equal(UapiErrno.Invalid, client.Set($"public_key={key.ToHex()}\nallowed_ip=10.8.0.1/32\n"));
        Assert.Single(server.GetPeers()[0].AllowedIPs);
        var (body, errno) = client.Get();
        Assert.Equal(0, errno);
        Assert.Contains($"public_key={key.ToHex()}\n", body);
        Assert.Equal(0, client.Set($"public_key={key.ToHex()}\nremove=true\n"));
        Assert.Empty(server.GetPeers());
        Assert.Equal(path, server.UapiPath);
        server.Stop();
        Assert.False(File.Exists(path));
    }
}
