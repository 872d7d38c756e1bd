using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace WgHost;

/// <summary>
/// The management API's local unix socket: its folder is created owner-only (so nobody else can reach
/// the socket between bind and chmod), a stale socket file of a dead host is removed, the socket gets
/// mode 0600 (or 0660 and the configured group) once Kestrel has bound it, every connection's peer is
/// checked with SO_PEERCRED (root, this process's user or the group), and the file is removed on stop.
/// </summary>
public sealed partial class ApiUnixSocket
{
    private readonly ApiSettings _settings;
    private readonly UnixFileMode _mode;
    private readonly int? _gid;
    private readonly uint _ownUid;
    private ILogger? _log;

    public ApiUnixSocket(ApiSettings settings)
    {
        _settings = settings;
        Path = settings.EffectiveUnixSocket();
        _mode = settings.UnixSocketMode switch
        {
            "0600" or "600" => UnixFileMode.UserRead | UnixFileMode.UserWrite,
            "0660" or "660" => UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite,
            _ => throw new HostConfigurationException($"Api:UnixSocketMode '{settings.UnixSocketMode}' is not allowed: use 0600 or 0660 (with Api:UnixSocketGroup)."),
        };
        if (settings.UnixSocketGroup is { Length: > 0 } group) _gid = ResolveGroup(group);
        if (_mode.HasFlag(UnixFileMode.GroupRead) && _gid is null)
            throw new HostConfigurationException("Api:UnixSocketMode 0660 needs Api:UnixSocketGroup (the group allowed to use the socket).");
        _ownUid = OperatingSystem.IsWindows() ? 0 : geteuid();
    }

    /// <summary>The socket's path; null when the API has no unix socket.</summary>
    public string? Path { get; }

    /// <summary>Connections refused because their peer was neither root, the host's user nor in the group.</summary>
    public long RefusedConnections => Interlocked.Read(ref _refused);
    private long _refused;

    public void Listen(KestrelServerOptions kestrel)
    {
        if (Path is null || OperatingSystem.IsWindows()) return;
        var dir = System.IO.Path.GetDirectoryName(Path)!;
        var dirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | (_gid is null ? 0 : UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        if (!Directory.Exists(dir)) Directory.CreateDirectory(dir, dirMode);
        if (File.Exists(Path))
        {
            if (WgEngine.Uapi.UapiSocketFile.IsLive(Path))
                throw new HostConfigurationException($"The API socket {Path} belongs to a running process (another host?); stop it or set Api:UnixSocket.");
            File.Delete(Path);
        }
        kestrel.ListenUnixSocket(Path, o =>
        {
            o.Protocols = HttpProtocols.Http1;
            o.Use(next => async connection =>
            {
                if (!IsAllowed(connection, out uint uid)) { connection.Abort(); return; }
                connection.Items[ApiAuth.PeerUidItem] = uid;   // the authentication handler's proof of a checked local caller
                await next(connection);
            });
        });
    }

    /// <summary>Sets the socket's mode and group once Kestrel listens; removes the file when the host stops.</summary>
    public void AttachTo(IHostApplicationLifetime lifetime, ILogger log)
    {
        _log = log;
        if (Path is null || OperatingSystem.IsWindows()) return;
        lifetime.ApplicationStarted.Register(() =>
        {
            if (_gid is { } gid && chown(Path, -1, gid) != 0)
                log.LogError("Could not give the API socket {Path} to group {Gid} (errno {Errno})", Path, gid, Marshal.GetLastPInvokeError());
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path, _mode);
            log.LogInformation("Management API on unix socket {Path} (mode {Mode})", Path, _settings.UnixSocketMode);
        });
        lifetime.ApplicationStopped.Register(() =>
        {
            try { File.Delete(Path); } catch (IOException) { }
        });
    }

    private bool IsAllowed(ConnectionContext connection, out uint uid)
    {
        uid = uint.MaxValue;
        var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
        if (socket is null || !TryGetPeer(socket, out int pid, out uid, out uint gid))
        {
            Refuse("unknown", "no peer credentials");
            return false;
        }
        if (uid == 0 || uid == _ownUid) return true;
        if (_gid is { } allowed && (gid == allowed || InSupplementaryGroup(pid, allowed))) return true;
        Refuse($"pid {pid} uid {uid} gid {gid}", "not root, the host's user or in Api:UnixSocketGroup");
        return false;
    }

    private void Refuse(string who, string why)
    {
        Interlocked.Increment(ref _refused);
        _log?.LogWarning("API socket connection refused ({Who}): {Why}", who, why);
    }

    /// <summary>SO_PEERCRED (Linux socket(7)): struct ucred { pid_t pid; uid_t uid; gid_t gid; }.</summary>
    private static bool TryGetPeer(Socket socket, out int pid, out uint uid, out uint gid)
    {
        pid = 0; uid = gid = uint.MaxValue;
        if (!OperatingSystem.IsLinux()) return false;
        Span<byte> cred = stackalloc byte[12];
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, cred) != 12) return false;
        }
        catch (SocketException) { return false; }
        pid = BitConverter.ToInt32(cred[..4]);
        uid = BitConverter.ToUInt32(cred[4..8]);
        gid = BitConverter.ToUInt32(cred[8..12]);
        return true;
    }

    private const int SolSocket = 1, SoPeerCred = 17;   // <asm-generic/socket.h>

    /// <summary>The "Groups:" line of /proc/PID/status (proc(5)): the caller's supplementary groups.</summary>
    private static bool InSupplementaryGroup(int pid, int gid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("Groups:", StringComparison.Ordinal))
                    return line[7..].Split(' ', '\t', StringSplitOptions.RemoveEmptyEntries).Contains(gid.ToString(CultureInfo.InvariantCulture));
        }
        catch (IOException) { }
        return false;
    }

    /// <summary>A numeric gid, or a name looked up in /etc/group (group(5)).</summary>
    private static int ResolveGroup(string group)
    {
        if (int.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out int id)) return id;
        if (File.Exists("/etc/group"))
            foreach (var line in File.ReadLines("/etc/group"))
            {
                var f = line.Split(':');
                if (f.Length >= 3 && f[0] == group && int.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out id)) return id;
            }
        throw new HostConfigurationException($"Api:UnixSocketGroup '{group}' is not a group on this host.");
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chown(string path, int owner, int group);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
