using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using WgApi;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgHost.Api;

namespace WgHost.Webhooks;

/// <summary>
/// Webhooks: each peer event (created, removed, enabled, disabled, expired, first handshake) is POSTed as
/// JSON to every configured URL that wants it, signed with HMAC-SHA256 over the body
/// (X-WgHost-Signature: sha256=HEX, as GitHub-style receivers check it), retried with exponential backoff
/// (1 s, 2 s, 4 s ... up to MaxAttempts). Never blocking: the engine only enqueues (VPNServer.PeerEvent),
/// deliveries wait in a bounded queue (the oldest dropped and counted when it is full), and a retry waits
/// on a timer, not in the queue. First handshakes are found by a scan every 2 s (the engine's packet path
/// stays untouched).
/// </summary>
public sealed class WebhookService : IHostedService, IDisposable
{
    private const int QueueLimit = 10_000;
    private static readonly TimeSpan ScanInterval = TimeSpan.FromSeconds(2);

    private readonly GatewayService _gateways;
    private readonly TimeProvider _time;
    private readonly ILogger<WebhookService> _log;
    private readonly List<Target> _targets = [];
    private readonly Channel<Delivery> _queue;
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, HashSet<WgKey>> _handshaken = new(StringComparer.OrdinalIgnoreCase);
    private ITimer? _scan;
    private Task? _worker;
    private long _dropped, _failed, _delivered;
    private int _disposed;

    public WebhookService(IOptions<HostSettings> settings, GatewayService gateways, TimeProvider time, ILogger<WebhookService> log)
    {
        _gateways = gateways;
        _time = time;
        _log = log;
        foreach (var w in settings.Value.Webhooks) _targets.Add(Target.From(w));
        _queue = Channel.CreateBounded<Delivery>(new BoundedChannelOptions(QueueLimit) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            _ => Interlocked.Increment(ref _dropped));
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) }) { Timeout = TimeSpan.FromSeconds(10) };
    }

    public long Delivered => Interlocked.Read(ref _delivered);
    public long Failed => Interlocked.Read(ref _failed);
    public long Dropped => Interlocked.Read(ref _dropped);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_targets.Count == 0) return Task.CompletedTask;
        foreach (var s in _gateways.Engines)
        {
            var seen = new HashSet<WgKey>();
            foreach (var p in s.GetPeers()) if (p.LatestHandshake is not null) seen.Add(p.PublicKey);
            lock (_handshaken) _handshaken[s.Name] = seen;
            s.PeerEvent += e => Enqueue("Peer" + e.Kind, e.Server, e.Peer, e.Time);
        }
        _worker = Task.Run(() => WorkAsync(_stop.Token), CancellationToken.None);   // runs until StopAsync, not bound to the start token
        _scan = _time.CreateTimer(_ => ScanHandshakes(), null, ScanInterval, ScanInterval);
        _log.LogInformation("Webhooks: {Count} target(s)", _targets.Count);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _scan?.Dispose();
        _queue.Writer.TryComplete();
        if (Volatile.Read(ref _disposed) == 0) _stop.Cancel();
        if (_worker is not null) await Task.WhenAny(_worker, Task.Delay(TimeSpan.FromSeconds(1), cancellationToken)).ConfigureAwait(false);
    }

    private void ScanHandshakes()
    {
        foreach (var s in _gateways.Engines)
        {
            HashSet<WgKey>? seen;
            lock (_handshaken) if (!_handshaken.TryGetValue(s.Name, out seen)) continue;
            var now = new HashSet<WgKey>();
            foreach (var p in s.GetPeers())
            {
                if (p.LatestHandshake is null) continue;
                now.Add(p.PublicKey);
                if (!seen.Contains(p.PublicKey)) Enqueue("PeerFirstHandshake", s.Name, p, _time.GetUtcNow());
            }
            lock (_handshaken) _handshaken[s.Name] = now;   // a removed peer is forgotten; re-added, it may handshake "first" again
        }
    }

    private void Enqueue(string type, string server, PeerStatus peer, DateTimeOffset time)
    {
        var id = Guid.NewGuid().ToString("N");
        var body = JsonSerializer.SerializeToUtf8Bytes(new WebhookEventDto
        {
            Id = id, Type = type, Time = time, Server = server, Peer = ApiModel.ToDto(peer),
        }, WgApiJson.Options);
        foreach (var t in _targets)
            if (t.Wants(type))
                _queue.Writer.TryWrite(new Delivery(t, type, id, body, Attempt: 1));
    }

    private async Task WorkAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var d in _queue.Reader.ReadAllAsync(ct).ConfigureAwait(false))
                await SendAsync(d, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
    }

    private async Task SendAsync(Delivery d, CancellationToken ct)
    {
        string? why;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, d.Target.Url) { Content = new ByteArrayContent(d.Body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Add("X-WgHost-Event", d.Type);
            request.Headers.Add("X-WgHost-Delivery", d.Id);
            request.Headers.Add("X-WgHost-Attempt", d.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.Add("X-WgHost-Signature", "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(d.Target.Secret, d.Body)));
            using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) { Interlocked.Increment(ref _delivered); return; }
            why = $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            if (ct.IsCancellationRequested) return;
            why = e.Message;
        }
        if (d.Attempt >= d.Target.MaxAttempts)
        {
            Interlocked.Increment(ref _failed);
            _log.LogWarning("Webhook {Type} to {Url} failed after {Attempts} attempts: {Why}", d.Type, d.Target.Url, d.Attempt, why);
            return;
        }
        var delay = d.Target.FirstRetry * Math.Pow(2, d.Attempt - 1);
        _log.LogInformation("Webhook {Type} to {Url}: {Why}; attempt {Next} in {Delay} s", d.Type, d.Target.Url, why, d.Attempt + 1, delay.TotalSeconds);
        // The retry waits on a timer, not in the queue: the next deliveries go on meanwhile.
        _ = Task.Delay(delay, _time, ct).ContinueWith(_ => _queue.Writer.TryWrite(d with { Attempt = d.Attempt + 1 }),
            ct, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
    }

    /// <summary>Idempotent: the container disposes it as the singleton and as the hosted service.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _scan?.Dispose();
        _stop.Cancel();
        _http.Dispose();
        _stop.Dispose();
    }

    private sealed record Delivery(Target Target, string Type, string Id, byte[] Body, int Attempt);

    /// <summary>Throws HostConfigurationException for an unusable webhook setting (checked before the host starts).</summary>
    public static void Check(WebhookSettings w) => Target.From(w);

    private sealed class Target
    {
        public required Uri Url { get; init; }
        public required byte[] Secret { get; init; }
        public HashSet<string>? Events { get; init; }
        public int MaxAttempts { get; init; }
        public TimeSpan FirstRetry { get; init; }

        public bool Wants(string type) => Events is null || Events.Contains(type);

        public static Target From(WebhookSettings w)
        {
            if (!Uri.TryCreate(w.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
                throw new HostConfigurationException($"Webhooks: '{w.Url}' is not an http(s) URL.");
            string secret = w.SecretFile is { Length: > 0 } file
                ? (File.Exists(file) ? File.ReadAllText(file).Trim() : throw new HostConfigurationException($"Webhooks: SecretFile {file} does not exist."))
                : w.Secret ?? "";
            if (secret.Length < 16)
                throw new HostConfigurationException($"Webhooks: the secret for {url.GetLeftPart(UriPartial.Path)} must have at least 16 characters (Secret or SecretFile).");
            var known = new[] { "PeerCreated", "PeerRemoved", "PeerEnabled", "PeerDisabled", "PeerExpired", "PeerFirstHandshake" };
            foreach (var e in w.Events ?? [])
                if (!known.Contains(e)) throw new HostConfigurationException($"Webhooks: event '{e}' is not one of {string.Join(", ", known)}.");
            if (w.MaxAttempts is < 1 or > 20) throw new HostConfigurationException("Webhooks: MaxAttempts is 1 to 20.");
            return new Target
            {
                Url = url, Secret = Encoding.UTF8.GetBytes(secret), Events = w.Events is { Count: > 0 } ev ? [.. ev] : null,
                MaxAttempts = w.MaxAttempts, FirstRetry = TimeSpan.FromSeconds(Math.Clamp(w.FirstRetrySeconds, 0.1, 3600)),
            };
        }
    }
}

/// <summary>One webhook target (HostSettings.Webhooks).</summary>
public sealed class WebhookSettings
{
    public string? Url { get; set; }
    /// <summary>The HMAC key, inline; prefer <see cref="SecretFile"/> (a file of mode 0600).</summary>
    public string? Secret { get; set; }
    public string? SecretFile { get; set; }
    /// <summary>Event types wanted; null or empty = all.</summary>
    public List<string>? Events { get; set; }
    public int MaxAttempts { get; set; } = 6;
    public double FirstRetrySeconds { get; set; } = 1;
}
