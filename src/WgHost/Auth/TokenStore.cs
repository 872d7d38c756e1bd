using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using WgEngine.Config;

namespace WgHost.Auth;

/// <summary>
/// The API's bearer tokens: a JSON file (mode 0600, written atomically) holding only each token's
/// SHA-256, its name and scope. A token is "wgh_" + a 12-hex-digit id + "_" + 256 random bits (base64url);
/// shown once by <see cref="Create"/> and never again. A 256-bit random secret needs no slow hash: the
/// digest cannot be inverted. Validation compares digests in constant time. The file is re-read when it
/// changes, so `WgHost token create/revoke` take effect on a running host.
/// </summary>
public sealed class TokenStore(string path)
{
    public const string ReadScope = "read", ReadWriteScope = "read-write";
    private const string Prefix = "wgh_";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private readonly object _lock = new();
    private Dictionary<string, TokenEntry> _byId = new(StringComparer.Ordinal);
    private DateTime _loadedStamp = DateTime.MinValue;

    public string Path { get; } = path;

    /// <summary>The entry a presented token belongs to, or null. Timing does not depend on how much of it matched.</summary>
    public TokenEntry? Validate(string presented)
    {
        Reload();
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(presented), digest);
        TokenEntry? entry = null;
        if (TryId(presented, out var id)) lock (_lock) _byId.TryGetValue(id, out entry);
        Span<byte> stored = stackalloc byte[32];
        // Unknown ids are compared against zeros: the same work either way.
        stored.Clear();
        if (entry is not null && entry.Sha256.Length == 64)
        {
            try { Convert.FromHexString(entry.Sha256).CopyTo(stored); }
            catch (FormatException) { stored.Clear(); }
        }
        bool equal = CryptographicOperations.FixedTimeEquals(digest, stored);
        return equal && entry is not null ? entry : null;
    }

    /// <summary>Re-reads the file when its time stamp changed (one stat per check: revocation is immediate).</summary>
    private void Reload()
    {
        lock (_lock)
        {
            var stamp = File.Exists(Path) ? File.GetLastWriteTimeUtc(Path) : DateTime.MinValue;
            if (stamp == _loadedStamp) return;
            _byId = Read(Path).ToDictionary(e => e.Id, StringComparer.Ordinal);
            _loadedStamp = stamp;
        }
    }

    /// <summary>Adds a token; returns its text (the only time it exists outside the caller's hands).</summary>
    public static (string Token, TokenEntry Entry) Create(string path, string name, string scope, DateTimeOffset now)
    {
        if (scope is not (ReadScope or ReadWriteScope)) throw new ArgumentException($"Scope '{scope}' is not '{ReadScope}' or '{ReadWriteScope}'.");
        if (string.IsNullOrWhiteSpace(name) || name.Any(char.IsControl)) throw new ArgumentException("A token needs a name without control characters.");
        var list = Read(path);
        if (list.Any(e => e.Name == name)) throw new ArgumentException($"A token named '{name}' exists; revoke it first or pick another name.");
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var token = $"{Prefix}{id}_{secret}";
        var entry = new TokenEntry(id, name, scope, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token))), now);
        list.Add(entry);
        Write(path, list);
        return (token, entry);
    }

    /// <summary>Removes the token with this id or name; false when there is none.</summary>
    public static bool Revoke(string path, string idOrName)
    {
        var list = Read(path);
        int removed = list.RemoveAll(e => e.Id == idOrName || e.Name == idOrName);
        if (removed > 0) Write(path, list);
        return removed > 0;
    }

    public static List<TokenEntry> Read(string path)
    {
        if (!File.Exists(path)) return [];
        try
        {
            return JsonSerializer.Deserialize<TokenFile>(File.ReadAllText(path), Json)?.Tokens ?? [];
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Token store {path} is not valid JSON: {e.Message}", e);
        }
    }

    private static void Write(string path, List<TokenEntry> list) =>
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new TokenFile { Tokens = list }, Json));

    private static bool TryId(string token, out string id)
    {
        id = "";
        if (!token.StartsWith(Prefix, StringComparison.Ordinal) || token.Length < Prefix.Length + 13 || token[Prefix.Length + 12] != '_') return false;
        id = token.Substring(Prefix.Length, 12);
        return true;
    }

    private sealed class TokenFile
    {
        public List<TokenEntry> Tokens { get; set; } = [];
    }
}

/// <summary>One token as stored: never the token itself, only its SHA-256 (hex).</summary>
public sealed record TokenEntry(string Id, string Name, string Scope, string Sha256, DateTimeOffset Created);
