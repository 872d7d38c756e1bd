using System.Net;
using WgApi;
using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgPowerShell.Session;

/// <summary>
/// A gateway in a host process, seen through its management API (Connect-WgServer): the same
/// <see cref="IGatewayServer"/> the cmdlets use for an in-process server. Results come back as the
/// engine's types and the host's ErrorDtos as <see cref="WgException"/>s with the same ErrorIds, so the
/// cmdlets' objects, views and errors are the same in both modes. Properties are the snapshot of the
/// last fetch (Get-WgServer fetches anew); Stats is read when accessed.
/// </summary>
internal sealed class RemoteServer : IGatewayServer
{
    private readonly RemoteConnection _connection;
    private ServerDto _dto;
    private Task? _completion;

    public RemoteServer(RemoteConnection connection, ServerDto dto)
    {
        _connection = connection;
        _dto = dto;
    }

    private WgApiClient Api => _connection.Client;
    private string Base => WgApiClient.ServerPath(_dto.Name);
    private string PeerPath(WgKey key) => $"{Base}/peers/{WgApiClient.KeySegment(key.ToBase64())}";

    public string Name => _dto.Name;
    public WgKey PublicKey => WgKey.Parse(_dto.PublicKey);
    public int ListenPort => _dto.ListenPort;
    public IReadOnlyList<IpPrefix> Addresses => _dto.Address.Select(IpPrefix.Parse).ToArray();
    public string BackendKind => _dto.Backend;
    public EgressMode Egress => Enum.TryParse<EgressMode>(_dto.Egress, out var e) ? e : EgressMode.None;
    public ServerState State => _dto.State == nameof(ServerState.Running) ? ServerState.Running : ServerState.Stopped;
    public DateTimeOffset StartedAt => _dto.StartedAt;
    public int PeerCount => _dto.PeerCount;
    public long ReceivedBytes => _dto.ReceivedBytes;
    public long SentBytes => _dto.SentBytes;
    public string? ConfigPath => _dto.ConfigPath;
    public string? UapiPath => _dto.UapiPath;
    public IPAddress? BindAddress => _dto.BindAddress is { } b ? IPAddress.Parse(b) : null;
    public int? Mtu => _dto.Mtu;
    public bool ConfigReadOnly => _dto.ConfigReadOnly;
    public bool PeerIsolation => _dto.PeerIsolation;
    public EgressRules EgressRules => new(_dto.EgressAllow.Select(IpPrefix.Parse).ToArray(), _dto.EgressDeny.Select(IpPrefix.Parse).ToArray(), _dto.EgressUnprotected);
    public IReadOnlyDictionary<string, IReadOnlyList<WgEngine.Policy.AclRule>> TagRules =>
        _dto.TagRules.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<WgEngine.Policy.AclRule>)kv.Value.SelectMany(WgEngine.Policy.AclRule.Parse).ToArray(), StringComparer.OrdinalIgnoreCase);

    // The management API v1 shows the traffic policy but does not change it yet: a clear error, nothing changed.
    public void SetPeerIsolation(bool on) => throw PolicyNotRemote("peer isolation");
    public void SetEgressRules(EgressRules rules) => throw PolicyNotRemote("egress rules");
    public void SetTagRules(string tag, IReadOnlyList<WgEngine.Policy.AclRule> rules) => throw PolicyNotRemote($"the rules of tag '{tag}'");

    private WgException PolicyNotRemote(string what) => new(WgErrorKind.InvalidOperation, "PolicyNotRemote",
        $"Server '{Name}' runs in the gateway host at {Api.Endpoint}: its API v1 does not change {what} yet. Change them in the host's config file (#! lines, docs/policy.md) and restart it; nothing was changed.");
    /// <summary>The host's egress counters are in GET .../stats; the live object exists only in-process.</summary>
    public EgressCounters? EgressCounters => null;

    public InterfaceStats Stats
    {
        get
        {
            var s = Call(() => Api.Get<StatsDto>($"{Base}/stats"));
            return new InterfaceStats(s.ReceivedBytes, s.SentBytes, s.DroppedPackets, s.HandshakesCompleted,
                s.CookieRepliesSent, s.RateLimitedHandshakes, s.InvalidHandshakes);
        }
    }

    /// <summary>Completes when the host no longer runs this gateway (or stops answering); polled once a second.</summary>
    public Task Completion => _completion ??= WatchAsync(_connection.Closing);

    private async Task WatchAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var dto = Api.Get<ServerDto>(Base);
                if (dto.State != nameof(ServerState.Running)) return;
            }
            catch (WgApiException) { return; }
            try { await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
        }
    }

    public PeerStatus AddPeer(PeerSpec spec) =>
        spec.Acl is { Count: > 0 } || spec.Tags is { Count: > 0 } || spec.UploadLimit is not null || spec.DownloadLimit is not null || spec.Quota is not null
            ? throw PolicyNotRemote("a peer's tags, rules, limits or quota")
            : ToStatus(Call(() => Api.Post<PeerDto>($"{Base}/peers", ToDto(spec))));

    public IReadOnlyList<PeerBatchResult> AddPeers(IReadOnlyList<PeerSpec> specs, bool allocateWhenEmpty = true)
    {
        var items = Call(() => Api.Post<PeerBatchItemDto[]>($"{Base}/peers/batch",
            new PeerBatchDto { Peers = specs.Select(ToDto).ToArray(), Allocate = allocateWhenEmpty }));
        var results = new PeerBatchResult[items.Length];
        for (int i = 0; i < items.Length; i++)
            results[i] = items[i].Error is { } e ? new PeerBatchResult(null, ToWgException(e, 0)) : new PeerBatchResult(ToStatus(items[i].Peer!), null);
        return results;
    }

    public PeerStatus UpdatePeer(WgKey publicKey, PeerUpdate changes) =>
        changes.Acl is not null || changes.Tags is not null || changes.UploadLimit is not null || changes.DownloadLimit is not null || changes.Quota is not null
            ? throw PolicyNotRemote("a peer's tags, rules, limits or quota")
            : ToStatus(Call(() => Api.Patch<PeerDto>(PeerPath(publicKey), new PeerUpdateDto
    {
        AllowedIPs = changes.AllowedIPs?.Select(p => p.ToString()).ToArray(),
        Name = changes.Name,
        PresharedKey = changes.PresharedKey?.ToBase64(),
        ClearPresharedKey = changes.ClearPresharedKey,
        Endpoint = changes.Endpoint?.ToString(),
        PersistentKeepalive = changes.PersistentKeepalive,
        ExpiresAt = changes.ExpiresAt,
        ClearExpiresAt = changes.ClearExpiresAt,
    })));

    public bool RemovePeer(WgKey publicKey) => Call(() => Api.Delete(PeerPath(publicKey), falseOnNotFound: true));

    public PeerStatus? GetPeerInfo(WgKey publicKey)
    {
        try { return ToStatus(Api.Get<PeerDto>(PeerPath(publicKey))); }
        catch (WgApiException e) when (e.Error.ErrorId == "PeerNotFound") { return null; }
        catch (WgApiException e) { throw ToException(e.Error, e.Status); }
    }

    /// <summary>One request per key: the host saves each; the in-process batching is a file-write saving.</summary>
    public IReadOnlyList<bool> RemovePeers(IReadOnlyList<WgKey> publicKeys) => publicKeys.Select(RemovePeer).ToArray();

    public IReadOnlyList<PeerBatchResult> UpdatePeers(IReadOnlyList<(WgKey PublicKey, PeerUpdate Changes)> updates)
    {
        var results = new PeerBatchResult[updates.Count];
        for (int i = 0; i < updates.Count; i++)
        {
            try { results[i] = new PeerBatchResult(UpdatePeer(updates[i].PublicKey, updates[i].Changes), null); }
            catch (WgException e) { results[i] = new PeerBatchResult(null, e); }
        }
        return results;
    }

    public IReadOnlyList<PeerStatus> GetPeers() => Call(() => Api.Get<PeerDto[]>($"{Base}/peers")).Select(ToStatus).ToArray();

    public bool DisablePeer(WgKey publicKey) => Call(() => Api.Post<PeerStateChangeDto>($"{PeerPath(publicKey)}/disable", null)).Changed;

    public bool EnablePeer(WgKey publicKey) => Call(() => Api.Post<PeerStateChangeDto>($"{PeerPath(publicKey)}/enable", null)).Changed;

    public void SetListenPort(int port) => _dto = Call(() => Api.Patch<ServerDto>(Base, new ServerUpdateDto { ListenPort = port }));

    public void SetPrivateKey(WgPrivateKey key)
    {
        _dto = Call(() => Api.Patch<ServerDto>(Base, new ServerUpdateDto { PrivateKey = key.ExportBase64() }));
        key.Dispose();   // the host holds it now; this process keeps no copy
    }

    public string ExportConfigText(WgConfigFormat format, bool includePrivateKey, bool includePresharedKeys = false)
    {
        if (includePrivateKey)
            throw new WgRemoteException(new ErrorDto
            {
                ErrorId = "PrivateKeyNotExported", Kind = "Authentication",
                Message = $"Server '{Name}' runs in a gateway host: its private key never leaves the host (read its config file there).",
            });
        // The API never answers with a preshared key (only a new client's one-time config holds one).
        if (includePresharedKeys)
            throw new WgRemoteException(new ErrorDto
            {
                ErrorId = "PresharedKeyNotExported", Kind = "Authentication",
                Message = $"Server '{Name}' runs in a gateway host: its peers' preshared keys never leave the host (read its config file there).",
            });
        return Call(() => Api.GetText($"{Base}/config?format={format}"));
    }

    public void Stop() => throw new WgException(WgErrorKind.InvalidOperation, "RemoteServerNotStoppable",
        $"Server '{Name}' runs in the gateway host at {Api.Endpoint}; stop the host there (systemctl stop wireguard-gateway, or SIGTERM).");

    /// <summary>An API call; its ErrorDto as the WgException the in-process engine would throw.</summary>
    private static T Call<T>(Func<T> call)
    {
        try { return call(); }
        catch (WgApiException e) { throw ToException(e.Error, e.Status); }
    }

    /// <summary>The engine's failures (and request-level ones) as the WgException the cmdlets handle per item; the
    /// connection's own (host unreachable, token refused) as a terminating error with the host's ErrorId.</summary>
    internal static Exception ToException(ErrorDto e, HttpStatusCode status) =>
        e.Kind is "Transport" or "Authentication" ? new WgRemoteException(e) : ToWgException(e, status);

    internal static WgException ToWgException(ErrorDto e, HttpStatusCode status) =>
        new(Enum.TryParse<WgErrorKind>(e.Kind, out var kind) ? kind : status switch
        {
            HttpStatusCode.NotFound => WgErrorKind.NotFound,
            HttpStatusCode.BadRequest or HttpStatusCode.UnsupportedMediaType or HttpStatusCode.RequestEntityTooLarge => WgErrorKind.InvalidArgument,
            HttpStatusCode.TooManyRequests => WgErrorKind.LimitExceeded,
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => WgErrorKind.InvalidOperation,
            _ => WgErrorKind.ResourceUnavailable,
        }, e.ErrorId, e.Message);

    private static PeerCreateDto ToDto(PeerSpec s) => new()
    {
        PublicKey = s.PublicKey.ToBase64(),
        AllowedIPs = s.AllowedIPs?.Select(p => p.ToString()).ToArray(),
        Name = s.Name,
        PresharedKey = s.PresharedKey?.ToBase64(),
        Endpoint = s.Endpoint?.ToString(),
        PersistentKeepalive = s.PersistentKeepalive,
        ExpiresAt = s.ExpiresAt,
        Disabled = s.Disabled,
    };

    private static PeerStatus ToStatus(PeerDto d) => new()
    {
        PublicKey = WgKey.Parse(d.PublicKey),
        Name = d.Name,
        AllowedIPs = d.AllowedIPs.Select(IpPrefix.Parse).ToArray(),
        Endpoint = d.Endpoint is null ? null : IPEndPoint.Parse(d.Endpoint),
        LatestHandshake = d.LatestHandshake,
        ReceivedBytes = d.ReceivedBytes,
        SentBytes = d.SentBytes,
        PersistentKeepalive = d.PersistentKeepalive,
        HasPresharedKey = d.HasPresharedKey,
        Enabled = d.Enabled,
        ExpiresAt = d.ExpiresAt,
        Tags = d.Tags,
        Acl = d.Acl.SelectMany(WgEngine.Policy.AclRule.Parse).ToArray(),
        DisabledReason = d.DisabledReason,
    };
}

/// <summary>A failure of the connection itself: PowerShell reports it with the host's ErrorId (e.g. WgHostUnreachable, Unauthorized).</summary>
internal sealed class WgRemoteException(ErrorDto error) : Exception(error.Message), System.Management.Automation.IContainsErrorRecord
{
    public ErrorDto Error { get; } = error;

    public System.Management.Automation.ErrorRecord ErrorRecord => new(this, Error.ErrorId,
        Error.ErrorId == "WgHostUnreachable" ? System.Management.Automation.ErrorCategory.ConnectionError
        : Error.Kind == "Authentication" ? System.Management.Automation.ErrorCategory.PermissionDenied
        : System.Management.Automation.ErrorCategory.NotSpecified, null);
}

/// <summary>A runspace's connection to a gateway host (Connect-WgServer); the cmdlets then act on its servers.</summary>
internal sealed class RemoteConnection : IServerConnection
{
    private readonly CancellationTokenSource _closing = new();

    public RemoteConnection(WgApiClient client, string kind)
    {
        Client = client;
        Kind = kind;
    }

    public WgApiClient Client { get; }
    public string Endpoint => Client.Endpoint;
    /// <summary>"UnixSocket" or "Https".</summary>
    public string Kind { get; }
    public CancellationToken Closing => _closing.Token;

    public IReadOnlyList<IGatewayServer> All()
    {
        ServerDto[] list;
        try { list = Client.Get<ServerDto[]>("v1/servers"); }
        catch (WgApiException e) { throw RemoteServer.ToException(e.Error, e.Status); }
        return list.OrderBy(s => s.Name, StringComparer.OrdinalIgnoreCase).Select(s => (IGatewayServer)new RemoteServer(this, s)).ToList();
    }

    public bool TryGet(string name, out IGatewayServer server)
    {
        try
        {
            server = new RemoteServer(this, Client.Get<ServerDto>(WgApiClient.ServerPath(name)));
            return true;
        }
        catch (WgApiException e) when (e.Error.ErrorId == "WgServerNotFound")
        {
            server = null!;
            return false;
        }
        catch (WgApiException e) { throw RemoteServer.ToException(e.Error, e.Status); }
    }

    public void Dispose()
    {
        _closing.Cancel();
        Client.Dispose();
        _closing.Dispose();
    }
}
