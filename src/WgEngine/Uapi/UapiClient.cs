using System.Net.Sockets;
using System.Text;
using WgEngine.Contracts;

namespace WgEngine.Uapi;

/// <summary>
/// Talks to a UAPI socket (wireguard-go, boringtun, or our own server): one connection per operation,
/// as `wg` does. Failures to reach the device become WgException(ResourceUnavailable).
/// </summary>
internal sealed class UapiClient(string path, TimeSpan? timeout = null)
{
    private readonly TimeSpan _timeout = timeout ?? TimeSpan.FromSeconds(5);

    public string Path { get; } = path;

    /// <summary>Runs `get=1` and returns the body (key=value lines) and the errno.</summary>
    public (string Body, int Errno) Get() => Exchange("get=1\n\n");

    /// <summary>Runs `set=1` with the given key=value lines; returns the errno (0 = applied).</summary>
    public int Set(string lines) => Exchange("set=1\n" + lines + "\n").Errno;

    /// <summary>Sends a raw request and reads until the `errno=N` line and the blank line after it.</summary>
    public (string Body, int Errno) Exchange(string request)
    {
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.SendTimeout = socket.ReceiveTimeout = (int)_timeout.TotalMilliseconds;
            socket.Connect(new UnixDomainSocketEndPoint(Path));
            socket.Send(Encoding.ASCII.GetBytes(request));
            var text = new StringBuilder();
            var buf = new byte[8192];
            while (true)
            {
                int n = socket.Receive(buf);
                if (n <= 0) break;
                text.Append(Encoding.ASCII.GetString(buf, 0, n));
                if (TrySplit(text.ToString(), out var body, out var errno)) return (body, errno);
            }
            throw new WgException(WgErrorKind.ResourceUnavailable, "UapiNoAnswer",
                $"The WireGuard device at '{Path}' closed the connection without an answer.");
        }
        catch (SocketException e)
        {
            throw new WgException(WgErrorKind.ResourceUnavailable, "UapiDeviceUnavailable",
                $"Cannot talk to the WireGuard device at UAPI socket '{Path}': {e.SocketErrorCode}.", e);
        }
    }

    /// <summary>Splits a complete answer "...errno=N\n\n" into body and errno.</summary>
    internal static bool TrySplit(string answer, out string body, out int errno)
    {
        body = "";
        errno = 0;
        if (!answer.EndsWith("\n\n", StringComparison.Ordinal)) return false;
        int start = answer.LastIndexOf("errno=", StringComparison.Ordinal);
        if (start < 0 || (start > 0 && answer[start - 1] != '\n')) return false;
        if (!int.TryParse(answer.AsSpan(start + 6, answer.Length - 2 - start - 6), out errno)) return false;
        body = answer[..start];
        return true;
    }
}
