using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Egress;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;
using static WgEngine.Tests.Egress.EgressPackets;

namespace WgEngine.Tests.Egress;

public class IcmpEchoEgressTests
{
    private static readonly EgressOptions Loopback = new() { Allow = [IpPrefix.Parse("127.0.0.1/32"), IpPrefix.Parse("::1/128")] };

    /// <summary>Checks an echo reply to the peer: from the pinged host, the peer's id and seq back, the data intact.</summary>
    private static void AssertEchoReply(byte[] reply, byte[] request)
    {
        AssertValid(reply);
        Assert.Equal(Destination(request), Source(reply));
        Assert.Equal(Source(request), Destination(reply));
        var icmp = Payload(reply);
        var sent = Payload(request);
        Assert.Equal(IsV4(request) ? 0 : 129, icmp[0]);
        Assert.Equal(U16(sent, 4), U16(icmp, 4));          // identifier: the peer's, not the kernel's
        Assert.Equal(U16(sent, 6), U16(icmp, 6));          // sequence
        Assert.Equal(sent.Slice(8).ToArray(), icmp.Slice(8).ToArray());
    }

    /// <summary>Whether net.ipv4.ping_group_range admits one of this process's groups (what the kernel checks).</summary>
    private static bool HostAllowsPingSockets()
    {
        var range = File.ReadAllText("/proc/sys/net/ipv4/ping_group_range").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
        var status = File.ReadAllLines("/proc/self/status");
        var groups = status.Where(l => l.StartsWith("Gid:") || l.StartsWith("Groups:"))
            .SelectMany(l => l.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries).Skip(1)).Select(long.Parse);
        return groups.Any(g => g >= range[0] && g <= range[1]);
    }

    [HostFact(HostNeeds.Linux)]   // ping sockets and net.ipv4.ping_group_range
    public void Pinging_the_host_works_or_is_counted_as_unavailable_as_the_sysctl_says()
    {
        var sink = new CaptureSink();
        var logs = new List<string>();
        using var egress = new UserspaceEgress(sink, Loopback, log: logs.Add);
        var request = Echo("10.8.0.2", "127.0.0.1", 0xBEEF, 7);
        egress.Deliver(PeerA, request);
        egress.Deliver(PeerA, Echo("10.8.0.2", "127.0.0.1", 0xBEEF, 8));

        if (HostAllowsPingSockets())
        {
            AssertEchoReply(sink.Next(), request);
            sink.Next();
            Assert.Equal(2, egress.Counters.IcmpEchoSent);
            TestSupport.TestNet.WaitFor(() => egress.Counters.IcmpEchoReplies == 2, "two echo replies counted");
            Assert.Equal(0, egress.Counters.IcmpUnavailable);
            Assert.Empty(logs);
        }
        else
        {
            Assert.Equal(2, egress.Counters.IcmpUnavailable);
            Assert.Equal(0, egress.Counters.IcmpEchoSent);
            Assert.Contains("ping_group_range", Assert.Single(logs));
            Assert.Contains("ping_group_range", egress.IcmpUnavailableReason);
            Assert.True(sink.Nothing());
        }
    }

    [Fact]
    public void A_host_that_refuses_ping_sockets_is_logged_once_and_asked_again_after_a_while()
    {
        var clock = new FakeTimeProvider();
        int attempts = 0;
        var logs = new List<string>();
        Socket Refuse(bool ipv4) { attempts++; throw new SocketException((int)SocketError.AccessDenied); }
        using var egress = new UserspaceEgress(new CaptureSink(), new EgressOptions { Allow = Loopback.Allow, TimeProvider = clock },
            null, null, 1420, logs.Add, null, Refuse);
        for (ushort seq = 0; seq < 5; seq++)
            egress.Deliver(PeerA, Echo("10.8.0.2", "127.0.0.1", (ushort)(100 + seq), seq));
        Assert.Equal(5, egress.Counters.IcmpUnavailable);
        Assert.Equal(1, attempts);                  // not a socket() call per ping while refused
        Assert.Single(logs);
        Assert.Contains("AccessDenied", logs[0]);

        clock.Advance(TimeSpan.FromSeconds(31));
        egress.Deliver(PeerA, Echo("10.8.0.2", "127.0.0.1", 1, 1));
        Assert.Equal(2, attempts);
        Assert.Equal(6, egress.Counters.IcmpUnavailable);
        Assert.Single(logs);
        Assert.Equal(0, egress.IcmpFlowCount);
    }

    [HostFact(HostNeeds.Namespaces)]
    public void Pings_go_out_through_ping_sockets_where_the_namespace_allows_them()
    {
        using var ns = new TestNamespace();
        ns.Run("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647");
        ns.Run("ip", "link", "set", "lo", "up");
        var sink = new CaptureSink();
        using var egress = new UserspaceEgress(sink, Loopback, null, null, 1420, null, null, ns.PingSocket);

        var v4 = Echo("10.8.0.2", "127.0.0.1", 0xBEEF, 1, 56);
        egress.Deliver(PeerA, v4);
        AssertEchoReply(sink.Next(), v4);
        var v6 = Echo("fd00:8::2", "::1", 0x1234, 9, 56);
        egress.Deliver(PeerA, v6);
        AssertEchoReply(sink.Next(), v6);

        // Same peer and id again: the mapping is reused; another id gets its own ping socket.
        egress.Deliver(PeerA, Echo("10.8.0.2", "127.0.0.1", 0xBEEF, 2, 56));
        egress.Deliver(PeerA, Echo("10.8.0.2", "127.0.0.1", 0xBEF0, 1, 56));
        AssertValid(sink.Next());
        AssertValid(sink.Next());
        Assert.Equal(3, egress.IcmpFlowCount);
        Assert.Equal(4, egress.Counters.IcmpEchoSent);
        TestSupport.TestNet.WaitFor(() => egress.Counters.IcmpEchoReplies == 4, "four replies counted");
        Assert.Equal(0, egress.Counters.IcmpUnavailable);
    }
}

/// <summary>A network namespace made for one test (unique name, deleted on dispose), and ping sockets created inside it.</summary>
internal sealed class TestNamespace : IDisposable
{
    private const int CloneNewNet = 0x40000000;

    [DllImport("libc", SetLastError = true)]
    private static extern int setns(int fd, int nstype);

    public TestNamespace()
    {
        Name = "wgegress-" + Guid.NewGuid().ToString("N")[..8];
        Exec("ip", "netns", "add", Name);
    }

    public string Name { get; }

    public void Run(params string[] command) => Exec(["ip", "netns", "exec", Name, .. command]);

    /// <summary>Creates the egress's ping socket from a thread that joined the namespace (a socket stays in the namespace it was made in).</summary>
    public Socket PingSocket(bool ipv4)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle("/run/netns/" + Name);
                if (setns((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                    throw new InvalidOperationException($"setns failed: errno {Marshal.GetLastPInvokeError()}");
                socket = IcmpEchoEgress.DefaultSocket(ipv4);
            }
            catch (Exception e) { error = e; }
        });
        thread.Start();
        thread.Join();
        if (error is SocketException se) throw se;
        if (error is not null) throw new InvalidOperationException("could not make a ping socket in the namespace", error);
        return socket!;
    }

    private static void Exec(params string[] command)
    {
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{string.Join(' ', command)} failed: {err}");
    }

    public void Dispose()
    {
        try { Exec("ip", "netns", "del", Name); } catch (InvalidOperationException) { }
    }
}
