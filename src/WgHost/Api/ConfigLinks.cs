using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using WgEngine.Contracts;
using WgEngine.Gateway;

namespace WgHost.Api;

/// <summary>
/// Single-use, time-limited links to a provisioned client's wg-quick file: GET /v1/links/{token} serves
/// it once (then 410 LinkUsed), until it expires (then 410 LinkExpired). The token (256 random bits) is
/// the capability, so the link needs no other authentication; only its SHA-256 is kept as the key. The
/// file (it holds the client's private key) stays in this process's memory only, and is dropped when
/// served or at expiry; a host restart forgets every link.
/// </summary>
public sealed class ConfigLinks
{
    public const int MaxSeconds = 7 * 24 * 3600;
    public const int MaxLinks = 10_000;
    private readonly ConcurrentDictionary<string, Link> _links = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public ConfigLinks(TimeProvider time) => _time = time;

    /// <summary>A new link's token and expiry. Throws WgException for a lifetime outside 1 s..7 days or too many open links.</summary>
    public (string Token, DateTimeOffset ExpiresAt) Create(string name, string config, int seconds)
    {
        if (seconds is < 1 or > MaxSeconds)
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidLinkLifetime", $"'linkSeconds' must be 1 to {MaxSeconds} (7 days).");
        Sweep();
        if (_links.Count >= MaxLinks)
            throw new WgException(WgErrorKind.LimitExceeded, "TooManyLinks", $"{MaxLinks} config links are open; let some expire or be fetched.");
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var expires = _time.GetUtcNow().AddSeconds(seconds);
        _links[Digest(token)] = new Link(name, config, expires);
        return (token, expires);
    }

    /// <summary>The link's file (once), or the reason it is not served.</summary>
    public IResult Serve(string token)
    {
        Sweep();
        if (!_links.TryGetValue(Digest(token), out var link))
            return ApiErrors.Result(StatusCodes.Status404NotFound, "LinkNotFound", "No such config link (it may have expired long ago, or the host restarted).", "NotFound");
        if (link.ExpiresAt <= _time.GetUtcNow())
            return ApiErrors.Result(StatusCodes.Status410Gone, "LinkExpired", "This config link has expired; ask for a new client.", "InvalidOperation");
        var config = Interlocked.Exchange(ref link.Config, null);
        if (config is null)
            return ApiErrors.Result(StatusCodes.Status410Gone, "LinkUsed", "This config link has been used; it serves the file only once.", "InvalidOperation");
        return new ConfigFileResult(link.Name, config);
    }

    /// <summary>Forgets links past their expiry (a used or expired link answers 410 until then... and 404 after a while).</summary>
    private void Sweep()
    {
        var cutoff = _time.GetUtcNow().AddMinutes(-10);   // keep answering 410 for ten minutes after expiry
        foreach (var (k, v) in _links)
            if (v.ExpiresAt <= cutoff) _links.TryRemove(k, out _);
    }

    private static string Digest(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private sealed class Link(string name, string config, DateTimeOffset expiresAt)
    {
        public string Name { get; } = name;
        public string? Config = config;
        public DateTimeOffset ExpiresAt { get; } = expiresAt;
    }

    /// <summary>The file as a download that no cache keeps.</summary>
    private sealed class ConfigFileResult(string name, string config) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            var safe = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
            context.Response.Headers.CacheControl = "no-store";
            context.Response.Headers.ContentDisposition = $"attachment; filename=\"{safe}.conf\"";
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync(config);
        }
    }
}
