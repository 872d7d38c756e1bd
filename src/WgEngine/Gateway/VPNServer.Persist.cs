using System.Net;
using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>
/// Persistence to a wg-quick file (ServerOptions.ConfigPath): loaded on Start, rewritten atomically
/// (AtomicFile) before any mutating call returns, so that a confirmed change is on disk. Batches
/// (AddPeers, a UAPI set) defer the write to their end: one file write for many changes.
/// </summary>
public sealed partial class VPNServer
{
    private string? _configPath;
    private WgInterfaceSection _template = new();   // DNS, MTU, Table, hooks... of the loaded file, written back
    private int _persistDefer;
    private bool _persistDirty;
    private bool _readOnly;

    /// <summary>True when the server runs from a config file it may not write (e.g. a read-only mount): every
    /// change is refused with WgException(InvalidOperation, "ConfigReadOnly") and nothing is written.</summary>
    public bool ConfigReadOnly => _readOnly;

    /// <summary>The wg-quick file this server persists to; null when none.</summary>
    public string? ConfigPath => _configPath;

    /// <summary>
    /// Writes the whole current state to <see cref="ConfigPath"/> now (no-op without one; deferred to the end
    /// of a batch inside one). Every mutating method calls it before returning; new ones must too.
    /// Throws WgException(ResourceUnavailable, "ConfigWriteFailed"): the change is in effect but not saved.
    /// </summary>
    public void Persist()
    {
        lock (_lock)
        {
            if (_configPath is null || _readOnly) return;   // read-only: only an expiry gets here, applied in memory
            if (_persistDefer > 0) { _persistDirty = true; return; }
            WriteNow();
        }
    }

    /// <summary>Adds many peers with one file write at the end (group commit). Each item fails on its own
    /// (the result holds its WgException); a failed write throws and confirms none of them.</summary>
    /// <param name="allocateWhenEmpty">False takes empty AllowedIPs as given (an import), true allocates as AddPeer does.</param>
    public IReadOnlyList<PeerBatchResult> AddPeers(IReadOnlyList<PeerSpec> specs, bool allocateWhenEmpty = true)
    {
        ArgumentNullException.ThrowIfNull(specs);
        lock (_lock)
        {
            EnsureChangeable();
            var results = new PeerBatchResult[specs.Count];
            BeginDefer();
            try
            {
                for (int i = 0; i < specs.Count; i++)
                {
                    try { results[i] = new PeerBatchResult(AddPeerCore(specs[i], allocateWhenEmpty), null); }
                    catch (WgException e) { results[i] = new PeerBatchResult(null, e); }
                }
            }
            finally { EndDefer(); }
            return results;
        }
    }

    /// <summary>Removes many peers with one file write at the end (see <see cref="RemovePeer"/>). An item is
    /// false when its key is unknown; a failed write throws (the removals are then in effect but not saved).</summary>
    public IReadOnlyList<bool> RemovePeers(IReadOnlyList<WgKey> publicKeys)
    {
        ArgumentNullException.ThrowIfNull(publicKeys);
        lock (_lock)
        {
            var results = new bool[publicKeys.Count];
            BeginDefer();
            try
            {
                for (int i = 0; i < publicKeys.Count; i++) results[i] = RemovePeer(publicKeys[i]);
            }
            finally { EndDefer(); }
            return results;
        }
    }

    /// <summary>Changes many peers with one file write at the end (see <see cref="UpdatePeer"/>). Each item fails
    /// on its own (the result holds its WgException); a failed write throws.</summary>
    public IReadOnlyList<PeerBatchResult> UpdatePeers(IReadOnlyList<(WgKey PublicKey, PeerUpdate Changes)> updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        lock (_lock)
        {
            EnsureChangeable();
            var results = new PeerBatchResult[updates.Count];
            BeginDefer();
            try
            {
                for (int i = 0; i < updates.Count; i++)
                {
                    try { results[i] = new PeerBatchResult(UpdatePeer(updates[i].PublicKey, updates[i].Changes), null); }
                    catch (WgException e) { results[i] = new PeerBatchResult(null, e); }
                }
            }
            finally { EndDefer(); }
            return results;
        }
    }

    /// <summary>The current configuration as a model (the private key only when asked for).</summary>
    public WgConfig ExportConfig(bool includePrivateKey)
    {
        lock (_lock)
        {
            var i = new WgInterfaceSection
            {
                PrivateKey = includePrivateKey ? _privateKey?.ExportBase64() : null,
                ListenPort = _backend.ListenPort,
                FwMark = (_backend as IDeviceSettings)?.Fwmark ?? _template.FwMark,
                Mtu = _template.Mtu,
            };
            i.Address.AddRange(Addresses);
            i.Dns.AddRange(_template.Dns);
            i.Extra.AddRange(_template.Extra);
            WriteEgressRules(i);
            WritePolicy(i);
            var config = new WgConfig { Interface = i };
            foreach (var e in _peers.Values) config.Peers.Add(ToSection(e));
            return config;
        }
    }

    /// <summary>The current configuration as wg-quick or `wg showconf` text; the secrets (the private key, the
    /// peers' preshared keys) only when asked for.</summary>
    public string ExportConfigText(WgConfigFormat format, bool includePrivateKey, bool includePresharedKeys = false) =>
        WgConfigWriter.Write(ExportConfig(includePrivateKey), format, includePrivateKey, includePresharedKeys);

    /// <summary>A peer section as PeerSpec (for Import): AllowedIPs are taken as given, never allocated.</summary>
    public static PeerSpec ToSpec(WgPeerSection p) => new()
    {
        PublicKey = p.PublicKey,
        AllowedIPs = p.AllowedIPs,
        Name = p.Name,
        PresharedKey = p.PresharedKey,
        Endpoint = ResolveEndpoint(p.Endpoint),
        EndpointText = p.Endpoint,
        PersistentKeepalive = p.PersistentKeepalive,
        Disabled = p.Disabled,
        ExpiresAt = p.ExpiresAt,
        Acl = p.Acl,
        Tags = p.Tags,
        UploadLimit = p.UploadLimit,
        DownloadLimit = p.DownloadLimit,
        Quota = p.Quota,
        QuotaUsedBytes = p.QuotaUsed,
        QuotaPeriodStart = p.QuotaPeriodStart,
        DisabledReason = p.DisabledReason,
    };

    private void BeginDefer() => _persistDefer++;

    private void EndDefer()
    {
        if (--_persistDefer == 0 && _persistDirty) WriteNow();
    }

    private void WriteNow()
    {
        string text = WgConfigWriter.Write(ExportConfig(includePrivateKey: true));
        try
        {
            AtomicFile.WriteAllText(_configPath!, text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _persistDirty = true;
            throw new WgException(WgErrorKind.ResourceUnavailable, "ConfigWriteFailed",
                $"Could not write config file '{_configPath}': {e.Message} The change is in effect but not saved; the next change retries.", e);
        }
        _persistDirty = false;
    }

    /// <summary>Called by Start after the backend runs: loads the file's peers, or creates the file.</summary>
    private void InitPersistence(ConfigLoad load)
    {
        lock (_lock)
        {
            _configPath = load.Path;
            StartWarnings = load.Warnings.ToArray();
            if (load.Config is { } config)
            {
                if (_template.Mtu is { } mtu) config.Interface.Mtu = mtu;   // -MTU given: it overrides the file's
                _template = config.Interface;
                BeginDefer();
                try
                {
                    foreach (var p in config.Peers)
                    {
                        try { AddPeerCore(ToSpec(p), allocateWhenEmpty: false); }
                        catch (WgException e)
                        {
                            throw new WgException(WgErrorKind.InvalidData, WgConfigParser.ErrorId,
                                $"{load.Path}, line {p.Line}: peer {p.PublicKey}: {e.Message}", e);
                        }
                    }
                }
                finally
                {
                    _persistDefer--;
                    _persistDirty = false;   // a failed load must leave the file untouched
                }
                if (load.ReadOnly) _readOnly = true;   // after loading: the load itself adds peers
                else if (load.MustWrite) WriteNow();   // loading alone rewrites nothing
            }
            else WriteNow();
        }
    }

    private WgPeerSection ToSection(PeerEntry e)
    {
        var c = e.Config!;
        var s = new WgPeerSection
        {
            PublicKey = c.PublicKey,
            PresharedKey = c.PresharedKey,
            Endpoint = e.EndpointText ?? FormatEndpoint(c.Endpoint),
            PersistentKeepalive = c.PersistentKeepalive,
            Name = e.Name,
            Disabled = e.Disabled,
            ExpiresAt = e.ExpiresAt,
        };
        s.AllowedIPs.AddRange(e.AllowedIPs);
        s.Acl.AddRange(c.Acl);
        s.UploadLimit = c.UploadLimit;
        s.DownloadLimit = c.DownloadLimit;
        s.Quota = c.Quota;
        s.QuotaUsed = c.Quota is null ? 0 : CurrentQuotaUsed(e);
        s.QuotaPeriodStart = c.Quota is null ? null : e.QuotaPeriodStart;
        s.DisabledReason = e.Disabled ? e.DisabledReason : null;
        s.Tags.AddRange(c.Tags);
        return s;
    }

    private static string? FormatEndpoint(IPEndPoint? ep)
    {
        if (ep is null) return null;
        var a = ep.Address.IsIPv4MappedToIPv6 ? ep.Address.MapToIPv4() : ep.Address;
        return new IPEndPoint(a, ep.Port).ToString();
    }

    /// <summary>An IP endpoint as is; a hostname resolved once (as wg-quick does), or null when it does not resolve
    /// (a config file's text is still kept and written back).</summary>
    public static IPEndPoint? ResolveEndpoint(string? text)
    {
        if (text is null) return null;
        if (IPEndPoint.TryParse(text, out var ep) && ep.Port != 0) return ep;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out int port)) return null;
        try
        {
            var addresses = Dns.GetHostAddresses(text[..colon]);
            return addresses.Length == 0 ? null : new IPEndPoint(addresses[0], port);
        }
        catch (System.Net.Sockets.SocketException) { return null; }
        catch (ArgumentException) { return null; }
    }

    /// <summary>What Start takes from an existing file, after the precedence rules of ServerOptions.ConfigPath.</summary>
    private sealed class ConfigLoad
    {
        public required string Path { get; init; }
        public WgConfig? Config { get; init; }
        public WgPrivateKey? FileKey { get; set; }
        public int? ListenPort { get; set; }
        public IReadOnlyList<IpPrefix>? Addresses { get; set; }
        public bool? PeerIsolation { get; set; }
        public IReadOnlyDictionary<string, IReadOnlyList<Policy.AclRule>>? TagRules { get; set; }
        /// <summary>The file's egress rules, unless the options override them.</summary>
        public Egress.EgressRules? EgressRules { get; set; }
        /// <summary>The file must be rewritten after loading (options overrode it, or it lacked a key).</summary>
        public bool MustWrite { get; set; }
        public List<string> Warnings { get; } = new();
        /// <summary>The file exists but may not be replaced: the server runs from it and refuses changes.</summary>
        public bool ReadOnly { get; set; }

        private static bool ReadableByOthers(string path)
        {
            if (OperatingSystem.IsWindows()) return false;
            const UnixFileMode Others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            return (File.GetUnixFileMode(path) & Others) != 0;
        }

        public static ConfigLoad Read(ServerOptions o)
        {
            var path = System.IO.Path.GetFullPath(o.ConfigPath!);
            bool writable = AtomicFile.CanReplace(path);
            if (writable) AtomicFile.RemoveStaleTempFiles(path);   // debris of writers killed mid-write: it holds the private key
            if (!File.Exists(path))
            {
                if (!writable)
                    throw new WgException(WgErrorKind.InvalidOperation, "ConfigReadOnly",
                        $"Config file '{path}' does not exist and cannot be created: its folder is not writable. No server was started.");
                return new ConfigLoad { Path = path };
            }
            string text;
            try { text = File.ReadAllText(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new WgException(WgErrorKind.ResourceUnavailable, "ConfigReadFailed", $"Cannot read config file '{path}': {e.Message}", e);
            }
            if (string.IsNullOrWhiteSpace(text))
                throw new WgException(WgErrorKind.InvalidData, "ConfigFileEmpty",
                    $"Config file '{path}' exists but is empty (a truncated file?); starting would replace it with a new key and no peers. Restore it from a backup, or delete it to start a new server.");
            var config = WgConfigParser.Parse(text, path);
            var load = new ConfigLoad { Path = path, Config = config };
            if (config.Interface.PrivateKey is not null && ReadableByOthers(path))
                load.Warnings.Add($"Config file '{path}' holds the private key and is readable by other users (as wg-quick warns: \"world accessible\"); it is rewritten with mode 0600 at the next change, or run chmod 600 on it.");
            var i = config.Interface;
            if (i.PrivateKey is { } keyText)
            {
                var fileKey = WgPrivateKey.Parse(keyText);
                if (o.PrivateKey is { } given)
                {
                    bool same = fileKey.PublicKey == given.PublicKey;
                    var filePublic = fileKey.PublicKey;
                    fileKey.Dispose();
                    if (!same)
                        throw new WgException(WgErrorKind.InvalidArgument, "ConfigConflict",
                            $"The private key given (public key {given.PublicKey}) differs from the one in '{path}' (public key {filePublic}); leave -PrivateKey out to use the file's, or use another -ConfigPath.");
                }
                else load.FileKey = fileKey;
            }
            else load.MustWrite = true;
            if (i.ListenPort is { } port && !o.OverrideListenPort) load.ListenPort = port;
            else load.MustWrite = true;
            if (i.Address.Count > 0 && !o.OverrideAddresses) load.Addresses = i.Address;
            else load.MustWrite = true;
            if (!writable)
            {
                if (i.PrivateKey is null)
                {
                    load.FileKey?.Dispose();
                    throw new WgException(WgErrorKind.InvalidOperation, "ConfigReadOnly",
                        $"Config file '{path}' has no PrivateKey and is read-only, so a key made now could not be saved. Put the key in the file, or make it writable. No server was started.");
                }
                load.ReadOnly = true;
                load.Warnings.Add($"Config file '{path}' is read-only: the server runs with it as it is"
                    + (o.OverrideListenPort || o.OverrideAddresses ? " (with -ListenPort/-Address as given, not saved)" : "")
                    + " and refuses every change (ConfigReadOnly); edit the file and restart to change it.");
            }
            load.PeerIsolation = i.PeerIsolation;
            load.TagRules = i.TagRules.Count == 0 ? null : i.TagRules.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<Policy.AclRule>)kv.Value, StringComparer.OrdinalIgnoreCase);
            if (o.PeerIsolation is { } iso && iso != (i.PeerIsolation ?? false)) load.MustWrite = true;
            if (o.OverrideEgressRules) load.MustWrite = true;
            else load.EgressRules = new Egress.EgressRules([.. i.EgressAllow], [.. i.EgressDeny], i.EgressUnprotected);
            return load;
        }
    }
}

/// <summary>One item of <see cref="VPNServer.AddPeers"/>: the added peer, or why it was not added.</summary>
public readonly record struct PeerBatchResult(PeerStatus? Status, WgException? Error);
