using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using WgEngine.Egress;
using WgEngine.Egress.Tcp;

namespace WgEngine.Tests.Egress.Tcp;

/// <summary>Collects what the egress sends into the tunnel.</summary>
internal sealed class CaptureSink : IPacketSink
{
    public readonly BlockingCollection<byte[]> Packets = new();
    public bool SendPacket(ReadOnlySpan<byte> ipPacket) { Packets.Add(ipPacket.ToArray()); return true; }

    public List<Seg> TakeSegments()
    {
        var l = new List<Seg>();
        while (Packets.TryTake(out var p)) l.Add(Seg.From(p));
        return l;
    }

    public Seg Next(int timeoutMs = 5000)
    {
        Assert.True(Packets.TryTake(out var p, timeoutMs), "no packet from the egress in time");
        return Seg.From(p);
    }
}

/// <summary>A connector whose connects the test completes by hand, with in-memory streams.</summary>
internal sealed class FakeConnector : IHostConnector
{
    public sealed class Attempt
    {
        public required IPEndPoint Remote;
        public required CancellationToken Token;
        public readonly TaskCompletionSource<HostConnectResult> Result = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public readonly BlockingCollection<Attempt> Attempts = new();

    public ValueTask<HostConnectResult> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken)
    {
        var a = new Attempt { Remote = remote, Token = cancellationToken };
        cancellationToken.Register(() => a.Result.TrySetResult(HostConnectResult.Failed(HostConnectError.TimedOut)));
        Attempts.Add(a, CancellationToken.None);   // recording the attempt is not part of the connect being cancelled
        return new ValueTask<HostConnectResult>(a.Result.Task);
    }

    public Attempt Next()
    {
        Assert.True(Attempts.TryTake(out var a, 5000), "no connect attempt in time");
        return a;
    }
}

/// <summary>An in-memory host connection: what the egress writes lands in <see cref="FromEgress"/>, <see cref="ToEgress"/> feeds its reads.</summary>
internal sealed class FakeStream : IHostStream
{
    public readonly Pipe ToEgress = new(), FromEgress = new();
    public volatile bool Aborted, ShutDown;

    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct)
    {
        var r = await ToEgress.Reader.ReadAsync(ct);
        int n = (int)Math.Min(r.Buffer.Length, buffer.Length);
        foreach (var seg in r.Buffer.Slice(0, n)) { seg.Span.CopyTo(buffer.Span); buffer = buffer.Slice(seg.Length); }
        ToEgress.Reader.AdvanceTo(r.Buffer.GetPosition(n));
        if (n == 0 && r.IsCompleted) return 0;
        return n;
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (Aborted) throw new IOException("aborted");
        await FromEgress.Writer.WriteAsync(data, ct);
    }

    public void ShutdownSend() { ShutDown = true; FromEgress.Writer.Complete(); }
    public void Abort() { Aborted = true; ToEgress.Writer.Complete(); }
    public void Dispose() { }
}

internal static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until it holds or the timeout passes.</summary>
    public static void Until(Func<bool> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "timed out waiting for: " + what);
            Thread.Sleep(2);
        }
    }
}
