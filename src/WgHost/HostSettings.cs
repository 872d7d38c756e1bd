using WgEngine.Contracts;
using WgEngine.Egress;
using WgEngine.Gateway;
using WgEngine.Net;
using WgFleet;

namespace WgHost;

/// <summary>
/// The host's settings: bound from the JSON file given by --settings, WGHOST_* environment variables and
/// --Key=value arguments (later ones win), plus gateways named on the command line by their wg-quick file.
/// See docs/host.md for the schema.
/// </summary>
public sealed class HostSettings
{
    public List<GatewaySettings> Gateways { get; set; } = [];
    public ApiSettings Api { get; set; } = new();
    /// <summary>Where to POST peer events (docs/host.md#webhooks).</summary>
    public List<Webhooks.WebhookSettings> Webhooks { get; set; } = [];
}

/// <summary>A gateway that is an instance of a fleet on a shared registry (as Start-WgServer -Registry -Fleet).</summary>
public sealed class FleetSettings
{
    /// <summary>The registry's PostgreSQL connection string (Npgsql); it may hold a password, so it is never logged
    /// and the settings file should be readable by the host's user only.</summary>
    public string? Registry { get; set; }
    /// <summary>The fleet's name (New-WgFleet).</summary>
    public string? Name { get; set; }
    /// <summary>The file whose first line is the fleet secret.</summary>
    public string? SecretPath { get; set; }
    /// <summary>The file holding the fleet's private key (as `wg genkey` writes it).</summary>
    public string? PrivateKeyPath { get; set; }
    /// <summary>Unique in the fleet; default host name, process id and a random suffix.</summary>
    public string? InstanceId { get; set; }
    /// <summary>What the instance reports as its endpoint (e.g. its address behind the load balancer).</summary>
    public string? AdvertisedEndpoint { get; set; }
    /// <summary>The cross-instance hub (docs/fleet.md): this instance's mesh endpoint (IP:port, as the other instances
    /// reach it) and/or its UDP port; neither = no mesh.</summary>
    public string? MeshEndpoint { get; set; }
    public int? MeshListenPort { get; set; }
}

/// <summary>One gateway: its wg-quick file (the usual case) and what to use when the file does not exist yet.</summary>
public sealed class GatewaySettings
{
    /// <summary>Interface name; default: the config file's name without .conf.</summary>
    public string? Name { get; set; }
    /// <summary>The wg-quick file loaded on start and rewritten after every change; null = nothing persisted.</summary>
    public string? ConfigPath { get; set; }
    /// <summary>Given: overrides the file's ListenPort (and is written back). Default 51820 for a new file.</summary>
    public int? ListenPort { get; set; }
    /// <summary>Given: overrides the file's Address (and is written back). Default 10.8.0.1/24 for a new file.</summary>
    public List<string>? Address { get; set; }
    public EgressMode Egress { get; set; } = EgressMode.Userspace;
    /// <summary>CIDRs the userspace egress may reach; null = its defaults.</summary>
    public List<string>? EgressAllow { get; set; }
    /// <summary>Where to serve the UAPI; null = the conventional path (/var/run/wireguard/NAME.sock when writable); "" = none.</summary>
    public string? UapiPath { get; set; }
    /// <summary>Given: this gateway is an instance of a fleet (docs/fleet.md): its peers and addresses come from the
    /// registry, so ConfigPath and Address do not apply.</summary>
    public FleetSettings? Fleet { get; set; }

    internal string EffectiveName =>
        !string.IsNullOrEmpty(Name) ? Name
        : ConfigPath is not null ? Path.GetFileNameWithoutExtension(ConfigPath)
        : "wg0";

    /// <summary>The engine's options; a malformed setting is a WgException naming the gateway.</summary>
    internal ServerOptions ToServerOptions(Action<string>? log = null)
    {
        var name = EffectiveName;
        List<IpPrefix>? addresses = null;
        if (Address is not null)
        {
            addresses = [];
            foreach (var a in Address)
                addresses.Add(IpPrefix.TryParse(a, out var p) ? p
                    : throw new WgException(WgErrorKind.InvalidArgument, "InvalidAddress", $"Gateway '{name}': Address '{a}' is not a CIDR such as 10.8.0.1/24."));
        }
        var egressOptions = ToEgressOptions();
        var defaults = new ServerOptions();
        return new ServerOptions
        {
            Name = name,
            ConfigPath = ConfigPath is null ? null : Path.GetFullPath(ConfigPath),
            ListenPort = ListenPort ?? defaults.ListenPort,
            OverrideListenPort = ListenPort is not null,
            Addresses = addresses ?? defaults.Addresses,
            OverrideAddresses = addresses is not null,
            Egress = Egress,
            EgressOptions = egressOptions,
            UapiPath = EffectiveUapiPath,
            Log = log,
        };
    }

    /// <summary>A fleet instance's options, with its private key read from Fleet.PrivateKeyPath (the caller owns it
    /// until the instance takes it). Missing or inapplicable settings are WgExceptions naming the gateway.</summary>
    internal FleetInstanceOptions ToFleetInstanceOptions()
    {
        var name = EffectiveName;
        var f = Fleet ?? throw new InvalidOperationException("not a fleet gateway");
        string? missing = f.Registry is null ? "Registry" : f.Name is null ? "Name" : f.SecretPath is null ? "SecretPath" : f.PrivateKeyPath is null ? "PrivateKeyPath" : null;
        if (missing is not null)
            throw new WgException(WgErrorKind.InvalidArgument, "FleetParameterMissing",
                $"Gateway '{name}': a fleet instance needs Fleet.Registry, Fleet.Name, Fleet.SecretPath and Fleet.PrivateKeyPath; Fleet.{missing} is missing.");
        string? notApplicable = ConfigPath is not null ? "ConfigPath" : Address is not null ? "Address" : null;
        if (notApplicable is not null)
            throw new WgException(WgErrorKind.InvalidArgument, "FleetSettingNotApplicable",
                $"Gateway '{name}': {notApplicable} does not apply to a fleet instance: the fleet's registry holds its addresses and peers.");
        var egressOptions = ToEgressOptions();
        return new FleetInstanceOptions
        {
            PrivateKey = FleetFiles.ReadPrivateKey(Path.GetFullPath(f.PrivateKeyPath!), $"Gateway '{name}': Fleet.PrivateKeyPath"),
            Name = name, InstanceId = f.InstanceId, AdvertisedEndpoint = f.AdvertisedEndpoint,
            MeshEndpoint = f.MeshEndpoint, MeshListenPort = f.MeshListenPort,
            ListenPort = ListenPort, Egress = Egress, EgressOptions = egressOptions, UapiPath = EffectiveUapiPath,
        };
    }

    private string? EffectiveUapiPath =>
        UapiPath is null ? WgEngine.Uapi.UapiSocketFile.DefaultPath(EffectiveName) : UapiPath.Length == 0 ? null : Path.GetFullPath(UapiPath);

    private EgressOptions? ToEgressOptions()
    {
        if (EgressAllow is null) return null;
        var allow = new List<IpPrefix>();
        foreach (var a in EgressAllow)
            allow.Add(IpPrefix.TryParse(a, out var p) ? p
                : throw new WgException(WgErrorKind.InvalidArgument, "InvalidEgressAllow", $"Gateway '{EffectiveName}': EgressAllow '{a}' is not a CIDR."));
        return new EgressOptions { Allow = allow };
    }
}

/// <summary>The API over HTTPS: where, the certificate, and the bearer tokens' store.</summary>
public sealed class HttpsSettings
{
    /// <summary>https://IP:PORT to listen on, e.g. https://127.0.0.1:8443.</summary>
    public string? Url { get; set; }
    public string? CertificatePath { get; set; }
    public string? KeyPath { get; set; }
    /// <summary>The token file `WgHost token create --store` writes.</summary>
    public string? TokenStore { get; set; }
    /// <summary>Failed token attempts per source address and minute before 429 TooManyFailedAttempts.</summary>
    public int FailedAttemptsPerMinute { get; set; } = 10;
}

/// <summary>The management API's listeners.</summary>
public sealed class ApiSettings
{
    /// <summary>The local unix socket; null = /run/wireguard-gateway/api.sock as root, else $XDG_RUNTIME_DIR/wireguard-gateway/api.sock; "" = none.</summary>
    public string? UnixSocket { get; set; }
    /// <summary>Octal mode of the socket: 0600 (owner only, default) or 0660 (with <see cref="UnixSocketGroup"/>).</summary>
    public string UnixSocketMode { get; set; } = "0600";
    /// <summary>A group (name or numeric id) whose members may use the socket (mode 0660).</summary>
    public string? UnixSocketGroup { get; set; }
    /// <summary>Larger bodies get 413 RequestBodyTooLarge.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;
    /// <summary>Requests served at once; more get 429 TooManyRequests.</summary>
    public int MaxConcurrentRequests { get; set; } = 64;
    /// <summary>Open connections at once (all listeners); Kestrel closes any beyond.</summary>
    public long MaxConnections { get; set; } = 512;
    /// <summary>A body slower than this (after the grace period) gets 408 RequestTimeout.</summary>
    public double MinBodyBytesPerSecond { get; set; } = 240;
    public double BodyGraceSeconds { get; set; } = 5;
    /// <summary>Headers not complete within this are dropped.</summary>
    public double RequestHeadersTimeoutSeconds { get; set; } = 10;
    /// <summary>The HTTPS listener; null = none.</summary>
    public HttpsSettings? Https { get; set; }
    /// <summary>A plain-HTTP loopback listener for Prometheus (/metrics, /healthz, /readyz only, no token),
    /// e.g. http://127.0.0.1:9586; null = none. /metrics is also on the unix socket and, with a token, on HTTPS.</summary>
    public string? MetricsUrl { get; set; }

    internal string? EffectiveUnixSocket()
    {
        if (UnixSocket is not null) return UnixSocket.Length == 0 ? null : Path.GetFullPath(UnixSocket);
        if (OperatingSystem.IsWindows()) return null;
        if (Environment.UserName == "root" || Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is not { Length: > 0 } xdg)
            return "/run/wireguard-gateway/api.sock";
        return Path.Combine(xdg, "wireguard-gateway", "api.sock");
    }
}
