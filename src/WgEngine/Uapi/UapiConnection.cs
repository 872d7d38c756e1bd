using System.Text;

namespace WgEngine.Uapi;

/// <summary>
/// Serves one UAPI client: a loop of `get=1` / `set=1` operations, each answered with `errno=N` and a
/// blank line, exactly as wireguard-go's IpcHandle does. Anything else (an unknown operation, end of
/// input, a client silent for longer than the idle timeout) closes the connection without an answer.
/// Never throws for bad input.
/// </summary>
internal sealed class UapiConnection
{
    /// <summary>wireguard-go reads set lines with a bufio.Scanner, whose longest line is 64 KiB.</summary>
    public const int MaxLineLength = 64 * 1024;
    private const int MaxOperationLength = 16;

    private readonly Stream _stream;
    private readonly IUapiTarget _target;
    private readonly TimeSpan _idle;
    private readonly byte[] _buf = new byte[4096];
    private int _pos, _len;
    private readonly StringBuilder _line = new();

    public UapiConnection(Stream stream, IUapiTarget target, TimeSpan idleTimeout)
    {
        _stream = stream;
        _target = target;
        _idle = idleTimeout;
    }

    /// <summary>Runs until the client leaves, misbehaves, stays silent, or <paramref name="ct"/> fires.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                var (op, complete) = await ReadLineAsync(MaxOperationLength, ct);
                if (op is null || !complete) return;          // EOF, timeout, or not a line
                int errno;
                var answer = new StringBuilder();
                if (op == "set=1")
                {
                    int? r = await SetAsync(ct);
                    if (r is null) return;
                    errno = r.Value;
                }
                else if (op == "get=1")
                {
                    int next = await ReadByteAsync(ct);
                    if (next < 0) return;
                    if (next != '\n') errno = UapiErrno.Invalid;   // "get=1\n" must be followed by the blank line
                    else
                    {
                        UapiGetWriter.Write(answer, _target.GetUapiState());
                        errno = UapiErrno.Ok;
                    }
                }
                else return;                                      // unknown operation: wireguard-go hangs up
                answer.Append("errno=").Append(errno).Append("\n\n");
                var bytes = Encoding.ASCII.GetBytes(answer.ToString());
                using var timeout = Timeout(ct);
                await _stream.WriteAsync(bytes, timeout.Token);
                await _stream.FlushAsync(timeout.Token);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException
                                     or System.Net.Sockets.SocketException)
        {
            // The client went away or stayed silent: nothing to answer.
        }
    }

    /// <summary>Reads and applies a set request. Null = hang up (timeout mid-request).</summary>
    private async Task<int?> SetAsync(CancellationToken ct)
    {
        var parser = new UapiSetParser();
        using var request = parser.Request;
        int errno = UapiErrno.Ok;
        bool terminated = false;
        while (true)
        {
            var (line, complete) = await ReadLineAsync(MaxLineLength, ct);
            if (line is null)
            {
                if (!complete) errno = UapiErrno.IO;                  // a line too long for the scanner
                else if (TimedOut) return null;
                break;                                              // EOF: apply what came (as wireguard-go does)
            }
            if (line.Length > 0 && line[^1] == '\r') line = line[..^1];
            if (line.Length == 0) { terminated = true; break; }
            errno = parser.Feed(line);
            if (errno != UapiErrno.Ok) break;
            if (!complete) break;                                   // last line without newline, then EOF
        }
        int applied;
        try { applied = _target.ApplyUapi(request); }
        catch (UapiException e) { applied = e.Errno; }
        catch (Exception) { applied = UapiErrno.Unknown; }
        if (applied != UapiErrno.Ok) errno = applied;
        if (errno != UapiErrno.Ok && !terminated && !TimedOut)
        {
            // Skip the rest of the rejected request so that the next operation starts on a line boundary.
            while (true)
            {
                var (rest, complete) = await ReadLineAsync(MaxLineLength, ct);
                if (rest is null || !complete || rest.Length == 0) break;
            }
        }
        return errno;
    }

    private bool TimedOut { get; set; }

    private CancellationTokenSource Timeout(CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_idle);
        return cts;
    }

    /// <summary>
    /// A line without its '\n' (bytes as Latin-1). Returns (null, true) at EOF before any byte or on
    /// timeout, (null, false) when longer than <paramref name="max"/>, (text, false) for a final line
    /// cut off by EOF.
    /// </summary>
    private async Task<(string? Line, bool Complete)> ReadLineAsync(int max, CancellationToken ct)
    {
        _line.Clear();
        while (true)
        {
            while (_pos < _len)
            {
                byte b = _buf[_pos++];
                if (b == '\n') return (_line.ToString(), true);
                if (_line.Length >= max) return (null, false);
                _line.Append((char)b);
            }
            if (!await FillAsync(ct)) return _line.Length == 0 ? (null, true) : (_line.ToString(), false);
        }
    }

    private async Task<int> ReadByteAsync(CancellationToken ct)
    {
        if (_pos >= _len && !await FillAsync(ct)) return -1;
        return _buf[_pos++];
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        using var timeout = Timeout(ct);
        try
        {
            _len = await _stream.ReadAsync(_buf, timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            TimedOut = true;
            _len = 0;
        }
        _pos = 0;
        return _len > 0;
    }
}
