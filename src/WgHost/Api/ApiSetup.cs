using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using WgApi;
using Prometheus;
using WgHost.Auth;

namespace WgHost.Api;

/// <summary>
/// The management API v1 on Kestrel: JSON (unknown fields and wrong types refused), limits against bad
/// clients (body size, slow bodies and headers, connections, concurrent requests), authentication, the
/// optional HTTPS listener (certificate and key PEM files, TLS 1.2 and 1.3 only), OpenAPI at
/// /openapi/v1.json. docs/api.md describes it.
/// </summary>
public static class ApiSetup
{
    public static void AddApi(WebApplicationBuilder builder, HostSettings settings, ApiUnixSocket socket)
    {
        var api = settings.Api;
        var services = builder.Services;
        services.Configure<JsonOptions>(o => WgApiJson.Configure(o.SerializerOptions));
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = api.MaxRequestBodyBytes;
            k.Limits.MaxConcurrentConnections = api.MaxConnections;
            k.Limits.MaxConcurrentUpgradedConnections = 0;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(api.RequestHeadersTimeoutSeconds);
            k.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(60);
            k.Limits.MinRequestBodyDataRate = new MinDataRate(api.MinBodyBytesPerSecond, TimeSpan.FromSeconds(api.BodyGraceSeconds));
            k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            socket.Listen(k);
            if (api.Https is { Url: { Length: > 0 } } https) ListenHttps(k, https);
            if (api.MetricsUrl is { Length: > 0 } metrics) ListenMetrics(k, metrics);
        });
        // Requests beyond the limit at once: 429 at once (no queue), the gateway unaffected.
        services.AddRateLimiter(o =>
        {
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(_ => RateLimitPartition.GetConcurrencyLimiter("all",
                _ => new ConcurrencyLimiterOptions { PermitLimit = api.MaxConcurrentRequests, QueueLimit = 0 }));
            o.OnRejected = (ctx, _) => new ValueTask(ApiErrors.Write(ctx.HttpContext, StatusCodes.Status429TooManyRequests, "TooManyRequests",
                "The API is serving as many requests as it allows at once (Api:MaxConcurrentRequests); retry shortly."));
        });
        TokenStore? store = api.Https?.TokenStore is { Length: > 0 } path ? new TokenStore(Path.GetFullPath(path)) : null;
        services.AddSingleton(new ApiAuthState(store, api.Https?.FailedAttemptsPerMinute ?? 10));
        services.AddAuthentication(ApiAuth.Scheme).AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiAuthenticationHandler>(ApiAuth.Scheme, null);
        services.AddAuthorization(o =>
        {
            o.AddPolicy(ApiAuth.Read, p => p.RequireClaim(ApiAuth.ScopeClaim, TokenStore.ReadScope, TokenStore.ReadWriteScope));
            o.AddPolicy(ApiAuth.Write, p => p.RequireClaim(ApiAuth.ScopeClaim, TokenStore.ReadWriteScope));
            o.AddPolicy(ApiAuth.Metrics, p => p.RequireClaim(ApiAuth.ScopeClaim, ApiAuth.MetricsScope, TokenStore.ReadScope, TokenStore.ReadWriteScope));
        });
        services.AddOpenApi("v1");
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<Metrics.GatewayMetrics>();
        services.AddSingleton<ConfigLinks>();
    }

    public static void MapApi(WebApplication app)
    {
        // Routing's own refusals (no such path, wrong method, a body that is not JSON) get an ErrorDto too.
        app.UseStatusCodePages(ctx => ctx.HttpContext.Response.StatusCode switch
        {
            404 => ApiErrors.Write(ctx.HttpContext, 404, "NotFound", "No such API path; see /openapi/v1.json."),
            405 => ApiErrors.Write(ctx.HttpContext, 405, "MethodNotAllowed", "This path does not take that method; see /openapi/v1.json."),
            415 => ApiErrors.Write(ctx.HttpContext, 415, "UnsupportedMediaType", "The body must be JSON (Content-Type: application/json)."),
            413 => ApiErrors.Write(ctx.HttpContext, 413, "RequestBodyTooLarge", "The request body is larger than the API accepts (Api:MaxRequestBodyBytes)."),
            408 => ApiErrors.Write(ctx.HttpContext, 408, "RequestTimeout", "The request body arrived too slowly."),
            int other => ApiErrors.Write(ctx.HttpContext, other, "BadRequest", "The request was refused."),
        });
        app.Use(ApiErrors.Middleware);
        app.UseRateLimiter();
        app.UseAuthentication();
        app.UseAuthorization();
        var v1 = app.MapGroup("/v1");
        ServerEndpoints.Map(v1);
        PeerEndpoints.Map(v1);
        ClientEndpoints.Map(v1);
        app.MapOpenApi("/openapi/{documentName}.json").RequireAuthorization(ApiAuth.Read);
        var metrics = app.Services.GetRequiredService<Metrics.GatewayMetrics>();
        app.MapMetrics("/metrics", metrics.Registry).RequireAuthorization(ApiAuth.Metrics);
    }

    /// <summary>Plain HTTP for a Prometheus on this host: loopback only, since it has no token.</summary>
    private static void ListenMetrics(KestrelServerOptions k, string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http" || !IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) || !IPAddress.IsLoopback(ip))
            throw new HostConfigurationException($"Api:MetricsUrl '{url}' is not http://LOOPBACK-IP:PORT (e.g. http://127.0.0.1:9586); scrape from elsewhere over HTTPS with a read token.");
        k.Listen(ip, uri.Port, o =>
        {
            o.Protocols = HttpProtocols.Http1;
            o.Use(next => connection =>
            {
                connection.Items[ApiAuth.MetricsListenerItem] = true;
                return next(connection);
            });
        });
    }

    private static void ListenHttps(KestrelServerOptions k, HttpsSettings https)
    {
        if (!Uri.TryCreate(https.Url, UriKind.Absolute, out var uri) || uri.Scheme != "https" || !IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip))
            throw new HostConfigurationException($"Api:Https:Url '{https.Url}' is not https://IP:PORT (e.g. https://127.0.0.1:8443).");
        if (https.CertificatePath is not { Length: > 0 } || https.KeyPath is not { Length: > 0 })
            throw new HostConfigurationException("Api:Https needs CertificatePath and KeyPath (PEM files).");
        if (https.TokenStore is not { Length: > 0 })
            throw new HostConfigurationException("Api:Https needs TokenStore (the file WgHost token create writes): HTTPS callers authenticate with tokens.");
        X509Certificate2 cert;
        try { cert = X509Certificate2.CreateFromPemFile(https.CertificatePath, https.KeyPath); }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new HostConfigurationException($"Api:Https: cannot load the certificate {https.CertificatePath} with key {https.KeyPath}: {e.Message}", e);
        }
        k.Listen(ip, uri.Port, o =>
        {
            o.Protocols = HttpProtocols.Http1AndHttp2;
            o.UseHttps(h =>
            {
                h.ServerCertificate = cert;
                h.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
            });
        });
    }
}
