using System.Net.Sockets;
using WgEngine.Contracts;

namespace WgEngine.Uapi;

/// <summary>
/// Listens on a unix socket (mode 0600) and serves each client on its own task with
/// <see cref="UapiConnection"/>, so a slow or silent client never holds up the others.
/// </summary>
internal sealed class UapiServer : IDisposable
{
    /// <summary>Connections served at once; more are closed at once (a local client flooding the socket).</summary>
    public const int MaxConnections = 256;

    private readonly Socket _listener;
    private readonly IUapiTarget _target;
    private readonly TimeSpan _idle;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private int _active;
    private int _disposed;

    private UapiServer(Socket listener, string path, IUapiTarget target, TimeSpan idle)
    {
        _listener = listener;
        Path = path;
        _target = target;
        _idle = idle;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The socket file.</summary>
    public string Path { get; }

    /// <summary>
    /// Creates the socket at <paramref name="path"/>. Throws WgException(ResourceUnavailable,
    /// "UapiSocketInUse") when a live listener holds the path; a stale socket file is replaced.
    /// </summary>
    public static UapiServer Start(string path, IUapiTarget target, TimeSpan? idleTimeout = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(target);
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
            throw new WgException(WgErrorKind.InvalidArgument, "UapiDirectoryMissing", $"The folder of UAPI socket '{path}' does not exist.");
        UapiSocketFile.RemoveIfStale(path);
        // Bind under a random name, restrict it to the owner, then move it into place: the final path
        // never exists with looser permissions.
        var temp = System.IO.Path.Combine(dir, $".uapi-{Guid.NewGuid():N}"[..20] + ".tmp");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(temp));
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(temp, path, overwrite: false);
            listener.Listen(64);
        }
        catch (Exception e)
        {
            listener.Dispose();
            try { File.Delete(temp); } catch (IOException) { }
            if (e is WgException) throw;
            throw new WgException(WgErrorKind.ResourceUnavailable, "UapiSocketFailed",
                $"Could not create UAPI socket '{path}': {e.Message}", e);
        }
        return new UapiServer(listener, path, target, idleTimeout ?? TimeSpan.FromSeconds(10));
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { continue; }
            catch (ObjectDisposedException) { return; }
            if (Interlocked.Increment(ref _active) > MaxConnections)
            {
                Interlocked.Decrement(ref _active);
                client.Dispose();
                continue;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        try
        {
            await using var stream = new NetworkStream(client, ownsSocket: true);
            await new UapiConnection(stream, _target, _idle).RunAsync(_stop.Token);
        }
        catch (Exception)
        {
            // One client's failure never reaches the listener or other clients.
        }
        finally
        {
            Interlocked.Decrement(ref _active);
        }
    }

    /// <summary>Stops listening, closes clients and removes the socket file.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _stop.Cancel();
        _listener.Dispose();
        try { _acceptLoop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        try { File.Delete(Path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
