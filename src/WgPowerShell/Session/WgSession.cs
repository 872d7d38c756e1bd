using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using WgEngine.Contracts;
using WgEngine.Gateway;

namespace WgPowerShell.Session;

/// <summary>
/// The servers of one runspace: its in-process ones, or, while Connect-WgServer's connection is open,
/// those of the gateway host it reaches. Thread-safe: a runspace may be closed from another thread.
/// </summary>
internal sealed class WgSession
{
    private readonly object _lock = new();
    private readonly Dictionary<string, VPNServer> _servers = new(StringComparer.OrdinalIgnoreCase);
    private IServerConnection? _remote;

    /// <summary>The open connection to a gateway host or a fleet; null when the cmdlets act on this process's servers.</summary>
    public IServerConnection? Remote
    {
        get { lock (_lock) return _remote; }
    }

    /// <summary>Opens (replacing any earlier) or, with null, closes the connection to a gateway host or a fleet.</summary>
    public void SetRemote(IServerConnection? connection)
    {
        IServerConnection? old;
        lock (_lock)
        {
            old = _remote;
            _remote = connection;
        }
        if (!ReferenceEquals(old, connection)) old?.Dispose();
    }

    /// <summary>Closes <paramref name="connection"/> if it is still the open one (a fleet instance that stopped).</summary>
    public void CloseRemote(IServerConnection connection)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_remote, connection)) return;
            _remote = null;
        }
        connection.Dispose();
    }

    public bool TryGet(string name, out IGatewayServer server)
    {
        if (Remote is { } remote) return remote.TryGet(name, out server);
        lock (_lock)
        {
            bool found = _servers.TryGetValue(name, out var s);
            server = s!;
            return found;
        }
    }

    public IReadOnlyList<IGatewayServer> All()
    {
        if (Remote is { } remote) return remote.All();
        lock (_lock) return _servers.Values.OrderBy(s => s.Name, StringComparer.OrdinalIgnoreCase).ToList<IGatewayServer>();
    }

    /// <summary>Adds a server; false when a running server already has that name (a stopped one is replaced).</summary>
    public bool TryAdd(VPNServer server)
    {
        lock (_lock)
        {
            if (_servers.TryGetValue(server.Name, out var existing))
            {
                if (existing.State == ServerState.Running) return false;
                existing.Dispose();
            }
            _servers[server.Name] = server;
            return true;
        }
    }

    public bool IsNameInUse(string name)
    {
        lock (_lock) return _servers.TryGetValue(name, out var s) && s.State == ServerState.Running;
    }

    /// <summary>Stops a server and forgets it. A gateway host's server refuses (WgException RemoteServerNotStoppable).</summary>
    public void Stop(IGatewayServer gateway)
    {
        if (gateway is not VPNServer server) { gateway.Stop(); return; }
        lock (_lock)
        {
            if (_servers.TryGetValue(server.Name, out var s) && ReferenceEquals(s, server)) _servers.Remove(server.Name);
        }
        server.Dispose();
    }

    public void StopAll()
    {
        List<VPNServer> all;
        lock (_lock)
        {
            all = _servers.Values.ToList();
            _servers.Clear();
        }
        SetRemote(null);
        foreach (var s in all) s.Dispose();
    }
}

/// <summary>One session per runspace; closing the runspace stops its servers.</summary>
internal static class SessionStore
{
    private static readonly ConditionalWeakTable<Runspace, WgSession> s_sessions = new();

    public static WgSession Current
    {
        get
        {
            var rs = Runspace.DefaultRunspace ?? throw new InvalidOperationException("WireGuardGateway cmdlets need a runspace.");
            return s_sessions.GetValue(rs, Create);
        }
    }

    /// <summary>Stops the current runspace's servers (Remove-Module).</summary>
    public static void StopCurrent()
    {
        var rs = Runspace.DefaultRunspace;
        if (rs is not null && s_sessions.TryGetValue(rs, out var session)) session.StopAll();
    }

    private static WgSession Create(Runspace rs)
    {
        var session = new WgSession();
        rs.StateChanged += (_, e) =>
        {
            if (e.RunspaceStateInfo.State is RunspaceState.Closing or RunspaceState.Closed or RunspaceState.Broken)
                session.StopAll();
        };
        return session;
    }
}
