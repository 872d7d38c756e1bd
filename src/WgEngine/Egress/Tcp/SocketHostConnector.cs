using System.Net;
using System.Net.Sockets;

namespace WgEngine.Egress.Tcp;

/// <summary>Host connections over ordinary non-blocking sockets (async on the thread pool), no privileges needed.</summary>
internal sealed class SocketHostConnector : IHostConnector
{
    public async ValueTask<HostConnectResult> ConnectAsync(IPEndPoint remote, CancellationToken cancellationToken)
    {
        var s = new Socket(remote.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await s.ConnectAsync(remote, cancellationToken).ConfigureAwait(false);
            return new HostConnectResult(new SocketHostStream(s), HostConnectError.None);
        }
        catch (SocketException e)
        {
            s.Dispose();
            return HostConnectResult.Failed(e.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => HostConnectError.Refused,
                SocketError.TimedOut => HostConnectError.TimedOut,
                _ => HostConnectError.Unreachable,
            });
        }
        catch (OperationCanceledException)
        {
            s.Dispose();
            return HostConnectResult.Failed(HostConnectError.TimedOut);
        }
    }

    private sealed class SocketHostStream(Socket socket) : IHostStream
    {
        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
            socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            while (!data.IsEmpty)
            {
                int n = await socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                data = data.Slice(n);
            }
        }

        public void ShutdownSend()
        {
            try { socket.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
        }

        public void Abort()
        {
            try { socket.LingerState = new LingerOption(true, 0); } catch (SocketException) { } catch (ObjectDisposedException) { }
            socket.Dispose(); // linger 0: close sends RST
        }

        public void Dispose() => socket.Dispose();
    }
}
