using System.Net;

namespace WgEngine.Egress.Tcp;

/// <summary>How the TCP egress reaches a destination from the host (real sockets, or a test double).</summary>
internal interface IHostConnector
{
    /// <summary>Connects to <paramref name="remote"/>. Network failures come back as <see cref="HostConnectResult.Error"/>,
    /// not as exceptions; cancellation (connect timeout, peer RST) ends the attempt.</summary>
    ValueTask<HostConnectResult> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken);
}

/// <summary>A connected stream, or why there is none.</summary>
internal readonly record struct HostConnectResult(IHostStream? Stream, HostConnectError Error)
{
    public static HostConnectResult Failed(HostConnectError error) => new(null, error);
}

/// <summary>One host-side connection. Reads and writes may run concurrently (one of each at a time).</summary>
internal interface IHostStream : IDisposable
{
    /// <summary>Reads into <paramref name="buffer"/>; 0 at end of stream; throws when the connection breaks.</summary>
    ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Writes all of <paramref name="data"/>; throws when the connection breaks.</summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Half-close: no more data from us (the peer sent FIN).</summary>
    void ShutdownSend();

    /// <summary>Hard close: the far end sees a reset (the peer sent RST, or the flow was torn down).</summary>
    void Abort();
}
