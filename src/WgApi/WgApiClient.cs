using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace WgApi;

/// <summary>
/// A client of the management API v1, over the host's unix socket (SocketsHttpHandler.ConnectCallback)
/// or HTTPS with a bearer token. Synchronous methods: the cmdlets that use it run on a pipeline thread
/// without a synchronisation context. Failures are <see cref="WgApiException"/> carrying the ErrorDto.
/// </summary>
public sealed class WgApiClient : IDisposable
{
    private readonly HttpClient _http;

    private WgApiClient(HttpClient http, string endpoint)
    {
        _http = http;
        Endpoint = endpoint;
    }

    /// <summary>The socket path or the base URI, for display.</summary>
    public string Endpoint { get; }

    public static WgApiClient ForUnixSocket(string path, TimeSpan? timeout = null)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch { s.Dispose(); throw; }
            },
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        };
        var http = new HttpClient(handler) { BaseAddress = new Uri("http://wghost/"), Timeout = timeout ?? TimeSpan.FromSeconds(100) };
        return new WgApiClient(http, path);
    }

    /// <param name="trustedCertificate">When given, the server's certificate must chain to this one (a self-signed host certificate); else the system's trust.</param>
    public static WgApiClient ForHttps(Uri baseUri, string token, X509Certificate2? trustedCertificate = null, TimeSpan? timeout = null)
    {
        if (baseUri.Scheme != Uri.UriSchemeHttps) throw new ArgumentException("The API's remote listener is HTTPS only.", nameof(baseUri));
        var handler = new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) };
        if (trustedCertificate is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
            {
                if (cert is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0) return false;   // name mismatch stays fatal
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(trustedCertificate);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(cert as X509Certificate2 ?? new X509Certificate2(cert));
            };
        }
        var http = new HttpClient(handler) { BaseAddress = new Uri(baseUri.GetLeftPart(UriPartial.Authority) + "/"), Timeout = timeout ?? TimeSpan.FromSeconds(100) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return new WgApiClient(http, baseUri.GetLeftPart(UriPartial.Authority));
    }

    /// <summary>A key as a path segment (base64url).</summary>
    public static string KeySegment(string base64Key) => base64Key.TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string ServerPath(string server) => "v1/servers/" + Uri.EscapeDataString(server);

    public T Get<T>(string path) => Send<T>(HttpMethod.Get, path, null);
    public T Post<T>(string path, object? body) => Send<T>(HttpMethod.Post, path, body);
    public T Patch<T>(string path, object body) => Send<T>(HttpMethod.Patch, path, body);

    public string GetText(string path)
    {
        using var response = SendRaw(HttpMethod.Get, path, null);
        return response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
    }

    /// <summary>DELETE; false for 404 PeerNotFound-style answers when <paramref name="falseOnNotFound"/>.</summary>
    public bool Delete(string path, bool falseOnNotFound)
    {
        try
        {
            using var response = SendRaw(HttpMethod.Delete, path, null);
            return true;
        }
        catch (WgApiException e) when (falseOnNotFound && e.Status == HttpStatusCode.NotFound && e.Error.ErrorId != "WgServerNotFound")
        {
            return false;
        }
    }

    private T Send<T>(HttpMethod method, string path, object? body)
    {
        using var response = SendRaw(method, path, body);
        try
        {
            return response.Content.ReadFromJsonAsync<T>(WgApiJson.Options).GetAwaiter().GetResult()
                ?? throw new WgApiException(response.StatusCode, new ErrorDto { ErrorId = "InvalidApiResponse", Message = "The host answered with an empty body.", Kind = "Transport" });
        }
        catch (JsonException e)
        {
            throw new WgApiException(response.StatusCode, new ErrorDto { ErrorId = "InvalidApiResponse", Message = $"The host's answer is not what this module expects: {e.Message}", Kind = "Transport" });
        }
    }

    private HttpResponseMessage SendRaw(HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body, body.GetType(), options: WgApiJson.Options);
        HttpResponseMessage response;
        try
        {
            response = _http.SendAsync(request).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is HttpRequestException or IOException or SocketException or TaskCanceledException)
        {
            throw new WgApiException(0, new ErrorDto
            {
                ErrorId = "WgHostUnreachable", Kind = "Transport",
                Message = $"The gateway host at {Endpoint} did not answer: {e.Message}",
            });
        }
        if (response.IsSuccessStatusCode) return response;
        using (response)
        {
            ErrorDto? error = null;
            try { error = response.Content.ReadFromJsonAsync<ErrorDto>(WgApiJson.Options).GetAwaiter().GetResult(); }
            catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException) { }
            throw new WgApiException(response.StatusCode, error ?? new ErrorDto
            {
                ErrorId = "ApiError", Kind = "Transport", Message = $"The gateway host answered {(int)response.StatusCode} {response.ReasonPhrase}.",
            });
        }
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>An API failure: the HTTP status (0 when the host did not answer) and the host's ErrorDto.</summary>
public sealed class WgApiException(HttpStatusCode status, ErrorDto error) : Exception(error.Message)
{
    public HttpStatusCode Status { get; } = status;
    public ErrorDto Error { get; } = error;
}
