using WgEngine.Contracts;
using WgEngine.Gateway;
using WgFleet;
using WgFleet.Postgres;

namespace WgHost;

/// <summary>
/// One gateway the host runs: what the management API acts on (<see cref="Gateway"/>: the server itself, or for a
/// fleet instance the fleet, whose writes go through the registry) and the engine running in this process
/// (<see cref="Engine"/>: its counters for /metrics, its peer events for the webhooks).
/// </summary>
public sealed class HostedGateway
{
    private HostedGateway(IGatewayServer gateway, VPNServer engine, FleetGateway? fleet)
    {
        Gateway = gateway;
        Engine = engine;
        Fleet = fleet;
    }

    public IGatewayServer Gateway { get; }
    public VPNServer Engine { get; }
    /// <summary>The fleet this gateway is an instance of; null for a standalone gateway.</summary>
    public FleetGateway? Fleet { get; }
    public string Name => Gateway.Name;

    /// <summary>Starts the gateway the settings describe; WgException when it cannot (nothing left running).</summary>
    public static HostedGateway Start(GatewaySettings settings, Action<string> log)
    {
        if (settings.Fleet is null)
        {
            var server = VPNServer.Start(settings.ToServerOptions(log));
            return new HostedGateway(server, server, null);
        }
        var options = settings.ToFleetInstanceOptions();
        var f = settings.Fleet;
        PostgresFleetRegistry? registry = null;
        FleetInstance instance;
        try
        {
            var secret = FleetFiles.ReadSecret(f.Name!, Path.GetFullPath(f.SecretPath!), $"Gateway '{settings.EffectiveName}': Fleet.SecretPath");
            try { registry = PostgresFleetRegistry.Open(f.Registry!, f.Name!, secret); }
            catch { secret.Dispose(); throw; }
            instance = FleetInstance.Start(registry, options);
        }
        catch
        {
            // Until the instance runs, the key and the registry are ours to release.
            options.PrivateKey.Dispose();
            registry?.Dispose();
            throw;
        }
        foreach (var warning in instance.Server.StartWarnings) log(warning);
        var fleet = new FleetGateway(registry, instance, settings.EffectiveName);
        return new HostedGateway(fleet, instance.Server, fleet);
    }

    /// <summary>Writes a standalone gateway's config file once more (a fleet's configuration is the registry) and
    /// stops it; for a fleet instance only this instance stops, the fleet goes on.</summary>
    public void Stop(ILogger log)
    {
        if (Fleet is null)
        {
            try { Engine.Persist(); }
            catch (WgException e) { log.LogError("Gateway {Name}: {ErrorId}: {Message}", Name, e.ErrorId, e.Message); }
            Engine.Dispose();
        }
        else Fleet.Dispose();
    }
}
