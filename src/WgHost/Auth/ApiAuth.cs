using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Options;
using WgHost.Api;
using WgHost.Auth;

namespace WgHost;

/// <summary>The API's two scopes as authorization policies, and the authentication scheme's name.</summary>
public static class ApiAuth
{
    public const string Scheme = "WgHost";
    public const string Read = "read", Write = "write";
    public const string ScopeClaim = "scope";
    /// <summary>Connection item the unix socket's SO_PEERCRED check leaves: the caller's uid.</summary>
    public const string PeerUidItem = "wghost.peer-uid";
    /// <summary>Connection item of the loopback metrics listener: its callers may scrape, nothing else.</summary>
    public const string MetricsListenerItem = "wghost.metrics-listener";
    public const string Metrics = "metrics";
    public const string MetricsScope = "metrics";
}

/// <summary>
/// Who the caller is: on the unix socket, whoever passed the SO_PEERCRED check (read-write: the socket's
/// mode is the access control); on HTTPS, the bearer token's scope. Failed token attempts are counted
/// per source address by a fixed-window rate limiter (System.Threading.RateLimiting, as ASP.NET Core's
/// rate limiting middleware uses); a source over its limit gets 429 without its token being checked.
/// </summary>
public sealed class ApiAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    ApiAuthState state) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    private const string LimitedItem = "wghost.auth-limited";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var items = Context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is not null && items.TryGetValue(ApiAuth.PeerUidItem, out var uid))
            return Task.FromResult(Success($"uid {uid}", TokenStore.ReadWriteScope, "peercred"));
        if (items is not null && items.ContainsKey(ApiAuth.MetricsListenerItem))
            return Task.FromResult(Success("metrics listener", ApiAuth.MetricsScope, "loopback"));

        string header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return Task.FromResult(AuthenticateResult.NoResult());
        var source = Context.Connection.RemoteIpAddress ?? IPAddress.None;
        if (state.Store is null) return Task.FromResult(AuthenticateResult.Fail("no token store"));
        using (var probe = state.FailedAttempts.AttemptAcquire(source, 0))
        {
            if (!probe.IsAcquired)
            {
                Context.Items[LimitedItem] = true;
                return Task.FromResult(AuthenticateResult.Fail("too many failed attempts"));
            }
        }
        var entry = state.Store.Validate(header["Bearer ".Length..].Trim());
        if (entry is null)
        {
            state.FailedAttempts.AttemptAcquire(source, 1).Dispose();
            Logger.LogWarning("API: a bearer token from {Source} was refused", source);
            return Task.FromResult(AuthenticateResult.Fail("invalid token"));
        }
        return Task.FromResult(Success($"token {entry.Name} ({entry.Id})", entry.Scope, "bearer"));
    }

    private AuthenticateResult Success(string name, string scope, string how)
    {
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name), new Claim(ApiAuth.ScopeClaim, scope)], how);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), ApiAuth.Scheme));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (Context.Items.ContainsKey(LimitedItem))
        {
            Response.Headers.RetryAfter = "60";
            return ApiErrors.Write(Context, StatusCodes.Status429TooManyRequests, "TooManyFailedAttempts",
                "Too many failed authentication attempts from this address; wait a minute.", "Authentication");
        }
        Response.Headers.WWWAuthenticate = "Bearer";
        return ApiErrors.Write(Context, StatusCodes.Status401Unauthorized, "Unauthorized",
            "This API needs a bearer token (Authorization: Bearer wgh_...); WgHost token create makes one.", "Authentication");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ApiErrors.Write(Context, StatusCodes.Status403Forbidden, "InsufficientScope",
            "The caller's scope does not cover this request (changes need a read-write token; the metrics listener serves only /metrics).", "Authentication");
}

/// <summary>The token store (null without HTTPS) and the per-source limiter of failed attempts.</summary>
public sealed class ApiAuthState(TokenStore? store, int failedAttemptsPerMinute)
{
    public TokenStore? Store { get; } = store;

    public PartitionedRateLimiter<IPAddress> FailedAttempts { get; } = PartitionedRateLimiter.Create<IPAddress, IPAddress>(ip =>
        RateLimitPartition.GetFixedWindowLimiter(ip, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = failedAttemptsPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0, AutoReplenishment = true,
        }));
}
