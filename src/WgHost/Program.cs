using Microsoft.Extensions.Logging.Console;
using WgHost;

// WgHost: runs the gateways of a settings file and/or wg-quick files until SIGTERM/SIGINT (or the
// service manager) stops it. Usage: docs/host.md.
return await HostProgram.RunAsync(args);

namespace WgHost
{
    public static class HostProgram
    {
        public const int ExitConfiguration = 2;

        public static async Task<int> RunAsync(string[] args)
        {
            if (args.Length > 0 && args[0] is "-h" or "--help" or "help")
            {
                Console.WriteLine(Usage);
                return 0;
            }
            if (args.Length > 0 && args[0] == "token")
                return Auth.TokenCommand.Run(args, Console.Out, Console.Error);
            HostArguments parsed;
            try { parsed = HostArguments.Parse(args); }
            catch (HostConfigurationException e)
            {
                Console.Error.WriteLine($"WgHost: {e.Message}");
                return ExitConfiguration;
            }
            WebApplication app;
            try { app = Build(parsed); }
            catch (Exception e) when (e is HostConfigurationException or InvalidDataException or FileNotFoundException or FormatException or InvalidOperationException)
            {
                Console.Error.WriteLine($"WgHost: {e.Message}");
                return ExitConfiguration;
            }
            try
            {
                await app.RunAsync();   // disposes the host when it ends
                return 0;
            }
            catch (HostConfigurationException e)
            {
                Console.Error.WriteLine($"WgHost: {e.Message}");
                return ExitConfiguration;
            }
        }

        /// <summary>The host: settings, logging for a terminal or the journal, the service manager's lifetime, the gateways, the API.</summary>
        public static WebApplication Build(HostArguments parsed)
        {
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions
            {
                Args = parsed.ConfigurationArgs,
                ContentRootPath = AppContext.BaseDirectory,
            });
            builder.Configuration.Sources.Clear();
            // Quiet defaults (one line per request is the access log's job); Logging:LogLevel:* overrides them.
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Information",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
                ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Information",
            });
            if (parsed.SettingsFile is { } settingsFile)
                builder.Configuration.AddJsonFile(Path.GetFullPath(settingsFile), optional: false, reloadOnChange: false);
            // Gateways named on the command line are Gateways:0..n-1, so --Gateways:0:ListenPort=... tunes the first.
            builder.Configuration.AddInMemoryCollection(parsed.ConfigFiles.Select((f, i) =>
                new KeyValuePair<string, string?>($"Gateways:{i}:ConfigPath", f)));
            builder.Configuration.AddEnvironmentVariables("WGHOST_");
            builder.Configuration.AddCommandLine(parsed.ConfigurationArgs);

            builder.Logging.ClearProviders();
            builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
            // One line per event with a UTC time stamp; under systemd, AddSystemd switches the formatter to
            // the journal's (<N> priority prefixes, no time stamp: the journal has its own).
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.ColorBehavior = LoggerColorBehavior.Disabled;
            });
            builder.Services.AddSystemd();          // Type=notify: READY=1 once every gateway and listener is up; STOPPING=1
            builder.Services.AddWindowsService(o => o.ServiceName = "WireGuardGateway");
            // SIGTERM -> stop within systemd's and the brief's 5 s: gateways close fast, the API gets the rest.
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(4));

            var settings = new HostSettings();
            builder.Configuration.Bind(settings);
            foreach (var w in settings.Webhooks) Webhooks.WebhookService.Check(w);
            builder.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(settings));
            builder.Services.AddSingleton<GatewayService>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<GatewayService>());
            builder.Services.AddSingleton<Webhooks.WebhookService>();   // after the gateways: it subscribes to their events
            builder.Services.AddHostedService(sp => sp.GetRequiredService<Webhooks.WebhookService>());

            var socket = new ApiUnixSocket(settings.Api);
            builder.Services.AddSingleton(socket);
            Api.ApiSetup.AddApi(builder, settings, socket);

            var app = builder.Build();
            socket.AttachTo(app.Lifetime, app.Logger);
            HealthEndpoints.Map(app);
            Api.ApiSetup.MapApi(app);
            return app;
        }

        private const string Usage = """
            WgHost: runs WireGuard gateways as a service, with a management API.
              WgHost [--settings FILE.json] [WG-QUICK.conf ...] [--Key=value ...]
              WgHost token create|revoke|list --store FILE ...   (the HTTPS API's bearer tokens)
            Each wg-quick file is a gateway named after the file (wg0.conf -> wg0), loaded when it exists and
            rewritten after every change. The settings file (docs/host.md) lists gateways and the API's listeners;
            --Key=value overrides one setting (e.g. --Api:UnixSocket=/run/wg/api.sock).
            Stops on SIGTERM/SIGINT; exit code 0, 2 for unusable settings.
            """;
    }

    /// <summary>The command line split into wg-quick files, --settings, and configuration overrides.</summary>
    public sealed record HostArguments(IReadOnlyList<string> ConfigFiles, string? SettingsFile, string[] ConfigurationArgs)
    {
        public static HostArguments Parse(string[] args)
        {
            var files = new List<string>();
            var rest = new List<string>();
            string? settings = null;
            for (int i = 0; i < args.Length; i++)
            {
                var a = args[i];
                if (a == "--settings")
                {
                    if (i + 1 >= args.Length) throw new HostConfigurationException("--settings needs a file.");
                    settings = args[++i];
                }
                else if (a.StartsWith("--settings=", StringComparison.Ordinal)) settings = a["--settings=".Length..];
                else if (a.StartsWith("--", StringComparison.Ordinal))
                {
                    rest.Add(a);
                    if (!a.Contains('=') && i + 1 < args.Length) rest.Add(args[++i]);
                }
                else if (a == "run" && i == 0) { }
                else if (a.EndsWith(".conf", StringComparison.OrdinalIgnoreCase)) files.Add(a);
                else throw new HostConfigurationException($"Unexpected argument '{a}': a gateway is a wg-quick file ending in .conf; settings are --Key=value. WgHost --help.");
            }
            return new HostArguments(files, settings, rest.ToArray());
        }
    }
}
