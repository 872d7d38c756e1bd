using WgApi;
using WgEngine.Contracts;
using WgEngine.Gateway;
using static WgHost.Api.ServerEndpoints;

namespace WgHost.Api;

/// <summary>/v1/servers/{server}/peers: Get/Add/Set/Remove/Enable/Disable-WgPeer with the engine's semantics
/// (allocation from the pool, overlap checks, expiry, the config written before the answer).</summary>
internal static class PeerEndpoints
{
    public static void Map(RouteGroupBuilder v1)
    {
        var peers = v1.MapGroup("/servers/{server}/peers");

        peers.MapGet("", (GatewayService g, string server, string? name, bool? enabled) => Guard(() =>
        {
            var s = Resolve(g, server);
            var pattern = ApiModel.Wildcard(name);
            var list = new List<PeerDto>();
            foreach (var p in s.GetPeers())
            {
                if (pattern is not null && !pattern.IsMatch(p.Name ?? "")) continue;
                if (enabled is { } e && p.Enabled != e) continue;
                list.Add(ApiModel.ToDto(p));
            }
            return Json(list);
        })).WithName("GetPeers").Produces<PeerDto[]>().RequireAuthorization(ApiAuth.Read);

        peers.MapGet("/{key}", (GatewayService g, string server, string key) => Guard(() =>
        {
            var s = Resolve(g, server);
            var k = ApiModel.KeyFromRoute(key);
            return s.GetPeerInfo(k) is { } p ? Json(ApiModel.ToDto(p)) : throw NotFound(s, k);
        })).WithName("GetPeer").Produces<PeerDto>().Produces<ErrorDto>(404).RequireAuthorization(ApiAuth.Read);

        peers.MapPost("", (GatewayService g, string server, PeerCreateDto body) => Guard(() =>
        {
            var s = Resolve(g, server);
            var p = s.AddPeer(ApiModel.ToSpec(body));
            return Json(ApiModel.ToDto(p), StatusCodes.Status201Created);
        })).WithName("AddPeer").Produces<PeerDto>(201).Produces<ErrorDto>(400).Produces<ErrorDto>(409).RequireAuthorization(ApiAuth.Write);

        // Many peers with one config write (Add-WgPeer's and Import-WgConfig's pipelines): each item succeeds or
        // fails on its own; a malformed item fails alone, before the engine sees the batch.
        peers.MapPost("/batch", (GatewayService g, string server, PeerBatchDto body) => Guard(() =>
        {
            var s = Resolve(g, server);
            var items = new PeerBatchItemDto[body.Peers.Length];
            var specs = new List<PeerSpec>(body.Peers.Length);
            var index = new List<int>(body.Peers.Length);
            for (int i = 0; i < body.Peers.Length; i++)
            {
                try { specs.Add(ApiModel.ToSpec(body.Peers[i])); index.Add(i); }
                catch (WgException e) { items[i] = new PeerBatchItemDto { Error = ApiErrors.Dto(e) }; }
            }
            var results = s.AddPeers(specs, body.Allocate);
            for (int j = 0; j < results.Count; j++)
                items[index[j]] = results[j].Error is { } error
                    ? new PeerBatchItemDto { Error = ApiErrors.Dto(error) }
                    : new PeerBatchItemDto { Peer = ApiModel.ToDto(results[j].Status!) };
            return Json(items);
        })).WithName("AddPeers").Produces<PeerBatchItemDto[]>().RequireAuthorization(ApiAuth.Write);

        peers.MapMethods("/{key}", ["PATCH"], (GatewayService g, string server, string key, PeerUpdateDto body) => Guard(() =>
        {
            var s = Resolve(g, server);
            var k = ApiModel.KeyFromRoute(key);
            return Json(ApiModel.ToDto(s.UpdatePeer(k, ApiModel.ToUpdate(body))));
        })).WithName("SetPeer").Produces<PeerDto>().Produces<ErrorDto>(404).RequireAuthorization(ApiAuth.Write);

        peers.MapDelete("/{key}", (GatewayService g, string server, string key) => Guard(() =>
        {
            var s = Resolve(g, server);
            var k = ApiModel.KeyFromRoute(key);
            return s.RemovePeer(k) ? Results.NoContent() : throw NotFound(s, k);
        })).WithName("RemovePeer").Produces(204).Produces<ErrorDto>(404).RequireAuthorization(ApiAuth.Write);

        peers.MapPost("/{key}/enable", (GatewayService g, string server, string key) => SetEnabled(g, server, key, true))
            .WithName("EnablePeer").Produces<PeerStateChangeDto>().RequireAuthorization(ApiAuth.Write);
        peers.MapPost("/{key}/disable", (GatewayService g, string server, string key) => SetEnabled(g, server, key, false))
            .WithName("DisablePeer").Produces<PeerStateChangeDto>().RequireAuthorization(ApiAuth.Write);
    }

    private static IResult SetEnabled(GatewayService g, string server, string key, bool enable) => Guard(() =>
    {
        var s = Resolve(g, server);
        var k = ApiModel.KeyFromRoute(key);
        bool changed = enable ? s.EnablePeer(k) : s.DisablePeer(k);
        var p = s.GetPeerInfo(k) ?? throw NotFound(s, k);
        return Json(new PeerStateChangeDto { Changed = changed, Peer = ApiModel.ToDto(p) });
    });

    private static WgException NotFound(IGatewayServer s, WgEngine.Crypto.WgKey key) =>
        new(WgErrorKind.NotFound, "PeerNotFound", $"No peer with public key {key} on server '{s.Name}'.");
}
