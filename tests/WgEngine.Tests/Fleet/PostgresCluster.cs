using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Fleet;

/// <summary>
/// A private PostgreSQL cluster for one test: initdb in a temporary folder, the server on 127.0.0.1 with a
/// free port and its own unix-socket folder, run as the `postgres` system user when the tests run as root
/// (postgres refuses root). Dispose stops it (immediate mode) and deletes the folder, also after a failure.
/// Stop/Start take the same cluster down and up again (the registry-unavailable tests).
/// </summary>
public sealed class PostgresCluster : IDisposable
{
    public const string BinDirectory = "/usr/lib/postgresql/15/bin";
    private readonly string _root, _data, _sockets, _log;
    private readonly string? _runAs;

    public int Port { get; }
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=wg;Database=postgres;Pooling=true;Timeout=3;Command Timeout=10";

    public static string? Unavailable() =>
        !OperatingSystem.IsLinux() ? "Linux" : !File.Exists(Path.Combine(BinDirectory, "initdb")) ? "PostgreSQL 15 (apt-get install postgresql)" : null;

    public PostgresCluster()
    {
        _root = Path.Combine(Path.GetTempPath(), "wgfleet-pg-" + Guid.NewGuid().ToString("N")[..12]);
        _data = Path.Combine(_root, "data");
        _sockets = Path.Combine(_root, "sock");
        _log = Path.Combine(_root, "server.log");
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_sockets);
        _runAs = Environment.IsPrivilegedProcess ? "postgres" : null;
        try
        {
            if (_runAs is not null) Run("chown", "-R", $"{_runAs}:", _root);
            RunPg("initdb", "-D", _data, "-U", "wg", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C");
            Port = FreeTcpPort();
            Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Start() =>
        RunPg("pg_ctl", "-D", _data, "-l", _log, "-w", "-t", "60", "-o",
            $"-p {Port} -k {_sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start");

    /// <summary>Stops the server at once (clients see their connections break).</summary>
    public void Stop() => RunPg("pg_ctl", "-D", _data, "-m", "immediate", "-w", "stop");

    public string ServerLog => File.Exists(_log) ? File.ReadAllText(_log) : "";

    public void Dispose()
    {
        try { if (File.Exists(Path.Combine(_data, "postmaster.pid"))) Stop(); }
        catch (InvalidOperationException) { }
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    private void RunPg(string tool, params string[] args)
    {
        var exe = Path.Combine(BinDirectory, tool);
        if (_runAs is null) Run(exe, args);
        else Run("runuser", ["-u", _runAs, "--", exe, .. args]);
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new InvalidOperationException($"{file} did not finish in 120 s"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr.Result}{stdout.Result}");
    }

    private static int FreeTcpPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>A fact that needs PostgreSQL's server binaries: skipped visibly without them, failed under CI=true.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (!HostRequirements.IsCI && PostgresCluster.Unavailable() is { } what) Skip = $"SKIPPED: needs {what}";
    }
}

/// <summary>A theory that needs PostgreSQL's server binaries: skipped visibly without them, failed under CI=true.</summary>
public sealed class PostgresTheoryAttribute : TheoryAttribute
{
    public PostgresTheoryAttribute()
    {
        if (!HostRequirements.IsCI && PostgresCluster.Unavailable() is { } what) Skip = $"SKIPPED: needs {what}";
    }
}
