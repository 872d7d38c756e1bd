using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using WgEngine.Gateway;
using WgPowerShell.Formatting;
using WgPowerShell.Models;
using WgPowerShell.Session;

namespace WgPowerShell.Completion;

/// <summary>Shared lookups for the completers: the live session of the runspace that asks.</summary>
internal static class CompletionSource
{
    /// <summary>The session's servers; none when no runspace (completion must never throw).</summary>
    public static IReadOnlyList<IGatewayServer> Servers()
    {
        try { return SessionStore.Current.All(); }
        catch (InvalidOperationException) { return []; }
    }

    /// <summary>The server(s) whose peers to offer: the -Server already on the line, else every server of the session.</summary>
    public static IEnumerable<IGatewayServer> ServersFor(IDictionary fakeBoundParameters)
    {
        var all = Servers();
        string? named = fakeBoundParameters.Contains("Server") ? ServerName(fakeBoundParameters["Server"]) : null;
        if (string.IsNullOrEmpty(named)) return all;
        return all.Where(s => string.Equals(s.Name, named, StringComparison.OrdinalIgnoreCase));
    }

    private static string? ServerName(object? value) =>
        (value is PSObject pso ? pso.BaseObject : value) switch
        {
            WgServer w => w.Name,
            string s => s,
            _ => null,
        };

    /// <summary>Quotes a value that PowerShell would otherwise split or expand.</summary>
    public static string Quote(string text) =>
        text.Length > 0 && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '+' or '/' or '=' or ':')
            ? text
            : "'" + text.Replace("'", "''") + "'";

    /// <summary>What the user typed so far, without surrounding quotes.</summary>
    public static string Typed(string wordToComplete) => wordToComplete.Trim('\'', '"');
}

/// <summary>-Server / -Name of the server cmdlets: the names of this runspace's servers.</summary>
public sealed class ServerNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var typed = CompletionSource.Typed(wordToComplete);
        foreach (var s in CompletionSource.Servers())
            if (s.Name.StartsWith(typed, StringComparison.OrdinalIgnoreCase))
                yield return new CompletionResult(CompletionSource.Quote(s.Name), s.Name, CompletionResultType.ParameterValue,
                    $"{s.Name}: {s.State}, UDP {s.ListenPort}, {s.PeerCount} peers");
    }
}

/// <summary>-Name of the peer cmdlets: peer names on the -Server given (or on every server).</summary>
public sealed class PeerNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var typed = CompletionSource.Typed(wordToComplete);
        var found = new SortedDictionary<string, CompletionResult>(StringComparer.OrdinalIgnoreCase);
        foreach (var server in CompletionSource.ServersFor(fakeBoundParameters))
            foreach (var p in server.GetPeers())
                if (p.Name is { Length: > 0 } name && name.StartsWith(typed, StringComparison.OrdinalIgnoreCase) && !found.ContainsKey(name))
                    found[name] = new CompletionResult(CompletionSource.Quote(name), name, CompletionResultType.ParameterValue,
                        $"{name} ({WgDisplay.ShortKey(p.PublicKey.ToBase64())}) on {server.Name}");
        return found.Values;   // sorted by name
    }
}

/// <summary>
/// -PublicKey of the peer cmdlets: matches what was typed against the start of a key or of a peer name,
/// and always completes to the key; the list shows the name beside it.
/// </summary>
public sealed class PeerKeyCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var typed = CompletionSource.Typed(wordToComplete);
        var found = new List<(string Sort, CompletionResult Result)>();
        foreach (var server in CompletionSource.ServersFor(fakeBoundParameters))
            foreach (var p in server.GetPeers())
            {
                var key = p.PublicKey.ToBase64();
                bool byKey = key.StartsWith(typed, StringComparison.Ordinal);
                bool byName = typed.Length > 0 && p.Name is { } n && n.StartsWith(typed, StringComparison.OrdinalIgnoreCase);
                if (!byKey && !byName) continue;
                string label = p.Name is { Length: > 0 } ? $"{key} ({p.Name})" : key;
                found.Add((p.Name ?? "\uffff" + key, new CompletionResult(CompletionSource.Quote(key), label, CompletionResultType.ParameterValue,
                    p.Name is { Length: > 0 } ? $"{p.Name} on {server.Name}" : $"unnamed peer on {server.Name}")));
            }
        // Named peers by name, then unnamed ones by key.
        found.Sort((x, y) => StringComparer.OrdinalIgnoreCase.Compare(x.Sort, y.Sort));
        return found.Select(f => f.Result);
    }
}
