using System.Net;
using System.Security.Cryptography;
using WgApi;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgPowerShell.Formatting;
using static WgHost.Api.ServerEndpoints;

namespace WgHost.Api;

/// <summary>
/// POST /v1/servers/{server}/clients: New-WgClient over the API. A key pair made here, the peer added with
/// allocated addresses, and the client's wg-quick file (optionally as QR codes) in the answer: the only
/// place the client's private key ever exists (never logged, never stored).
/// </summary>
internal static class ClientEndpoints
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapPost("/servers/{server}/clients", (GatewayService g, ConfigLinks links, string server, ClientCreateDto body) => Guard(() =>
            Json(Provision(Resolve(g, server), body, links), StatusCodes.Status201Created)))
            .WithName("NewClient").Produces<ClientDto>(201).Produces<ErrorDto>(400).Produces<ErrorDto>(409).RequireAuthorization(ApiAuth.Write);

        // The token is the capability (anyone with the link may fetch it once); not on the metrics listener.
        v1.MapGet("/links/{token}", (HttpContext ctx, ConfigLinks links, string token) =>
            ctx.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionItemsFeature>()?.Items.ContainsKey(ApiAuth.MetricsListenerItem) == true
                ? ApiErrors.Result(StatusCodes.Status403Forbidden, "InsufficientScope", "The metrics listener serves only /metrics.", "Authentication")
                : links.Serve(token))
            .WithName("GetConfigLink").Produces<string>(contentType: "text/plain").Produces<ErrorDto>(410).AllowAnonymous();
    }

    public static ClientDto Provision(IGatewayServer server, ClientCreateDto body, ConfigLinks links)
    {
        if (body.LinkSeconds is { } ls && ls is < 1 or > ConfigLinks.MaxSeconds)
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidLinkLifetime", $"'linkSeconds' must be 1 to {ConfigLinks.MaxSeconds} (7 days).");
        if (string.IsNullOrWhiteSpace(body.Name))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidPeerName", "'name' is required.");
        if (!ClientEndpoint.TryNormalize(body.Endpoint ?? "", server.ListenPort, out var endpoint))
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidClientEndpoint",
                "'endpoint' is not host[:port], e.g. vpn.example.com:51820, 203.0.113.5 or [2001:db8::1]:51820.");
        var dns = new List<string>();
        foreach (var item in body.Dns ?? [])
            foreach (var part in (item ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                dns.Add(IPAddress.TryParse(part, out _) || ClientEndpoint.IsHostName(part) ? part
                    : throw new WgException(WgErrorKind.InvalidArgument, "InvalidClientDns", "'dns' has an entry that is neither an IP address nor a search domain."));
        if (body.SplitTunnel && body.AllowedIPs is { Length: > 0 })
            throw new WgException(WgErrorKind.InvalidArgument, "SplitTunnelWithAllowedIPs", "Give 'splitTunnel' or 'allowedIPs', not both.");
        var routes = body.SplitTunnel
            ? server.Addresses.Select(a => a.Network.ToString()).Distinct().ToArray()
            : body.AllowedIPs is { Length: > 0 } ? ApiModel.Prefixes(body.AllowedIPs, "allowedIPs").Select(p => p.ToString()).ToArray()
            : ["0.0.0.0/0", "::/0"];
        int keepalive = ApiModel.Keepalive(body.PersistentKeepalive);
        var qr = body.Qr ?? [];
        foreach (var q in qr)
            if (q is not ("png" or "svg"))
                throw new WgException(WgErrorKind.InvalidArgument, "InvalidQrFormat", "'qr' lists \"png\" and/or \"svg\".");
        foreach (var p in server.GetPeers())
            if (string.Equals(p.Name, body.Name, StringComparison.OrdinalIgnoreCase))
                throw new WgException(WgErrorKind.AlreadyExists, "ClientNameExists",
                    $"Server '{server.Name}' already has a peer named '{body.Name}'; pick another name or remove that peer first.");

        using var key = WgPrivateKey.Generate();
        WgKey? psk = null;
        if (body.WithPresharedKey)
        {
            Span<byte> b = stackalloc byte[WgKey.Size];
            RandomNumberGenerator.Fill(b);
            psk = new WgKey(b);
            b.Clear();
        }
        var status = server.AddPeer(new PeerSpec { PublicKey = key.PublicKey, Name = body.Name, PresharedKey = psk });
        var address = status.AllowedIPs.Select(a => a.ToString()).ToArray();
        var config = ClientConfigText.Render(new ClientConfigSpec
        {
            PrivateKey = key.ExportBase64(), Address = address, DNS = dns, ServerPublicKey = server.PublicKey.ToBase64(),
            PresharedKey = psk?.ToBase64(), Endpoint = endpoint, AllowedIPs = routes, PersistentKeepalive = keepalive,
        });
        (string Token, DateTimeOffset ExpiresAt)? link = body.LinkSeconds is { } seconds ? links.Create(body.Name, config, seconds) : null;
        return new ClientDto
        {
            Server = server.Name, Name = body.Name, PublicKey = key.PublicKey.ToBase64(), Address = address, Endpoint = endpoint,
            Dns = dns.ToArray(), AllowedIPs = routes, PersistentKeepalive = keepalive, HasPresharedKey = psk is not null, Config = config,
            QrPng = qr.Contains("png") ? Convert.ToBase64String(WgQrCode.Png(config, 8)) : null,
            QrSvg = qr.Contains("svg") ? WgQrCode.Svg(config) : null,
            Link = link is { } l ? $"/v1/links/{l.Token}" : null,
            LinkExpiresAt = link?.ExpiresAt,
        };
    }
}
