using Microsoft.Extensions.Options;
using WgEngine.Contracts;
using WgEngine.Gateway;

namespace WgHost;

/// <summary>
/// Starts every configured gateway when the host starts (before systemd hears READY=1, so "active" means
/// "serving") and stops them when it stops: each config file is written once more (every confirmed
/// change is already on disk; this covers a write that failed earlier), then the server is disposed,
/// which closes the UDP port and removes its UAPI socket. A gateway with Fleet settings is an instance of
/// that fleet (<see cref="HostedGateway"/>): the API's writes go through the fleet's registry.
/// </summary>
public sealed class GatewayService(IOptions<HostSettings> settings, ILogger<GatewayService> log) : IHostedService
{
    private readonly object _lock = new();
    private readonly List<HostedGateway> _servers = [];

    /// <summary>The running gateways as the API sees them, in start order.</summary>
    public IReadOnlyList<IGatewayServer> Servers { get { lock (_lock) return _servers.Select(h => h.Gateway).ToList(); } }

    /// <summary>The engines running in this process, in start order (counters, peer events).</summary>
    public IReadOnlyList<VPNServer> Engines { get { lock (_lock) return _servers.Select(h => h.Engine).ToList(); } }

    public IGatewayServer? Find(string name)
    {
        lock (_lock) return _servers.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))?.Gateway;
    }

    /// <summary>True once every gateway started and none has stopped since.</summary>
    public bool IsReady
    {
        get { lock (_lock) return _started && _servers.All(s => s.Engine.State == ServerState.Running); }
    }
    private bool _started;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var gateways = settings.Value.Gateways;
        if (gateways.Count == 0)
            throw new HostConfigurationException("No gateway configured: name a wg-quick file on the command line (WgHost /etc/wireguard/wg0.conf) or list Gateways in the settings file.");
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var g in gateways)
            if (!names.Add(g.EffectiveName))
                throw new HostConfigurationException($"Two gateways are named '{g.EffectiveName}'; give each a distinct Name.");
        try
        {
            foreach (var g in gateways)
            {
                var gateway = g.EffectiveName;
                var hosted = HostedGateway.Start(g, m => log.LogWarning("Gateway {Name}: {Message}", gateway, m));
                lock (_lock) _servers.Add(hosted);
                var server = hosted.Engine;
                log.LogInformation("Gateway {Name} started: UDP port {Port}, public key {PublicKey}, addresses {Addresses}, {Peers} peers, config {Config}, UAPI {Uapi}",
                    server.Name, server.ListenPort, server.PublicKey, string.Join(", ", server.Addresses), server.PeerCount,
                    hosted.Fleet is { } f ? $"(fleet '{f.Fleet}', instance {f.InstanceId})" : server.ConfigPath ?? "(none)", server.UapiPath ?? "(none)");
            }
        }
        catch (WgException e)
        {
            StopAll();
            throw new HostConfigurationException($"{e.ErrorId}: {e.Message}", e);
        }
        lock (_lock) _started = true;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        StopAll();
        return Task.CompletedTask;
    }

    private void StopAll()
    {
        List<HostedGateway> all;
        lock (_lock)
        {
            all = _servers.ToList();
            _servers.Clear();
            _started = false;
        }
        foreach (var s in all)
        {
            var config = s.Engine.ConfigPath;
            s.Stop(log);
            log.LogInformation("Gateway {Name} stopped ({Peers} peers, config {Config})", s.Name, s.Engine.PeerCount, config ?? "(none)");
        }
    }
}

/// <summary>Settings that cannot work (no gateway, a bad address, a port in use): the host exits with code 2.</summary>
public sealed class HostConfigurationException(string message, Exception? inner = null) : Exception(message, inner);
