using WgApi;
using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;

namespace WgHost.Api;

/// <summary>/v1/servers: Get-WgServer, Set-WgServer, the counters (stats) and Export-WgConfig (never with the private key).</summary>
internal static class ServerEndpoints
{
    public static void Map(RouteGroupBuilder v1)
    {
        v1.MapGet("/servers", (GatewayService g) => Results.Json(g.Servers.Select(ApiModel.ToDto).ToArray(), WgApiJson.Options))
            .WithName("GetServers").Produces<ServerDto[]>().RequireAuthorization(ApiAuth.Read);

        v1.MapGet("/servers/{server}", (GatewayService g, string server) => Guard(() => Json(ApiModel.ToDto(Resolve(g, server)))))
            .WithName("GetServer").Produces<ServerDto>().Produces<ErrorDto>(404).RequireAuthorization(ApiAuth.Read);

        v1.MapMethods("/servers/{server}", ["PATCH"], (GatewayService g, string server, ServerUpdateDto body) => Guard(() =>
        {
            var s = Resolve(g, server);
            if (body.ListenPort is { } p && p is < 0 or > 65535)
                throw new WgException(WgErrorKind.InvalidArgument, "InvalidListenPort", "'listenPort' must be 0 to 65535.");
            WgPrivateKey? key = null;
            if (body.PrivateKey is not null)
                key = WgPrivateKey.TryParse(body.PrivateKey, out var k) ? k
                    : throw new WgException(WgErrorKind.InvalidArgument, "InvalidKey", "'privateKey' is not a WireGuard key (44 characters of base64).");
            try
            {
                // As Set-WgServer: the port moves first, so a port in use leaves the key untouched too.
                if (body.ListenPort is { } port) s.SetListenPort(port);
                if (key is not null) { s.SetPrivateKey(key); key = null; }
            }
            finally { key?.Dispose(); }
            return Json(ApiModel.ToDto(s));
        })).WithName("SetServer").Produces<ServerDto>().Produces<ErrorDto>(400).RequireAuthorization(ApiAuth.Write);

        v1.MapGet("/servers/{server}/stats", (GatewayService g, string server) => Guard(() => Json(Stats(Resolve(g, server)))))
            .WithName("GetServerStats").Produces<StatsDto>().RequireAuthorization(ApiAuth.Read);

        v1.MapGet("/servers/{server}/config", (GatewayService g, string server, string? format) => Guard(() =>
        {
            var f = format is null or "" or "WgQuick" or "wg-quick" ? WgConfigFormat.WgQuick
                : format is "ShowConf" or "showconf" ? WgConfigFormat.ShowConf
                : throw new WgException(WgErrorKind.InvalidArgument, "InvalidConfigFormat", "'format' is WgQuick or ShowConf.");
            return Results.Text(Resolve(g, server).ExportConfigText(f, includePrivateKey: false), "text/plain; charset=utf-8");
        })).WithName("ExportConfig").Produces<string>(contentType: "text/plain").RequireAuthorization(ApiAuth.Read);
    }

    public static StatsDto Stats(IGatewayServer s)
    {
        var st = s.Stats;
        var peers = s.GetPeers();
        var cutoff = DateTimeOffset.UtcNow.AddSeconds(-180);
        var e = s.EgressCounters;
        return new StatsDto
        {
            ReceivedBytes = st.ReceivedBytes, SentBytes = st.SentBytes, DroppedPackets = st.DroppedPackets,
            HandshakesCompleted = st.HandshakesCompleted, CookieRepliesSent = st.CookieRepliesSent,
            RateLimitedHandshakes = st.RateLimitedHandshakes, InvalidHandshakes = st.InvalidHandshakes,
            PeersConfigured = peers.Count, PeersEnabled = peers.Count(p => p.Enabled),
            PeersConnected = peers.Count(p => p.LatestHandshake is { } h && h >= cutoff),
            Egress = e is null ? null : new Dictionary<string, long>
            {
                ["tcpOpened"] = e.TcpOpened, ["tcpActive"] = e.TcpActive, ["tcpRefused"] = e.TcpRefused,
                ["tcpUnreachable"] = e.TcpUnreachable, ["tcpLimited"] = e.TcpLimited, ["tcpResets"] = e.TcpResets,
                ["udpFlowsOpened"] = e.UdpFlowsOpened, ["udpFlowsActive"] = e.UdpFlowsActive, ["udpLimited"] = e.UdpLimited,
                ["icmpEchoSent"] = e.IcmpEchoSent, ["icmpEchoReplies"] = e.IcmpEchoReplies, ["denied"] = e.Denied,
                ["malformed"] = e.Malformed, ["unsupported"] = e.Unsupported,
            },
        };
    }

    public static IGatewayServer Resolve(GatewayService g, string name) =>
        g.Find(name) ?? throw new WgException(WgErrorKind.NotFound, "WgServerNotFound",
            $"No WireGuard server named '{(name.Length <= 32 ? name : name[..32] + "...")}' on this host. GET /v1/servers lists them.");

    public static IResult Json<T>(T value, int status = StatusCodes.Status200OK) => Results.Json(value, WgApiJson.Options, statusCode: status);

    /// <summary>Runs a handler; an engine error becomes its ErrorDto and status.</summary>
    public static IResult Guard(Func<IResult> handler)
    {
        try { return handler(); }
        catch (WgException e) { return ApiErrors.From(e); }
    }
}
