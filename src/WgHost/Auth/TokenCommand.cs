namespace WgHost.Auth;

/// <summary>
/// `WgHost token create|revoke|list --store FILE`: manages the HTTPS API's bearer tokens. create prints
/// the new token once on stdout (nothing else there, so `TOKEN=$(WgHost token create ...)` works).
/// </summary>
public static class TokenCommand
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? verb = args.Length > 1 ? args[1] : null;
        string? store = null, name = null, scope = TokenStore.ReadScope;
        var positional = new List<string>();
        for (int i = 2; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--store" when i + 1 < args.Length: store = args[++i]; break;
                case "--name" when i + 1 < args.Length: name = args[++i]; break;
                case "--scope" when i + 1 < args.Length: scope = args[++i]; break;
                default: positional.Add(args[i]); break;
            }
        }
        if (store is null || verb is not ("create" or "revoke" or "list"))
        {
            stderr.WriteLine("Usage: WgHost token create --store FILE --name NAME [--scope read|read-write]");
            stderr.WriteLine("       WgHost token revoke --store FILE ID-OR-NAME");
            stderr.WriteLine("       WgHost token list --store FILE");
            return HostProgram.ExitConfiguration;
        }
        try
        {
            switch (verb)
            {
                case "create":
                    var (token, entry) = TokenStore.Create(store, name ?? "", scope, DateTimeOffset.UtcNow);
                    stdout.WriteLine(token);
                    stderr.WriteLine($"Token '{entry.Name}' (id {entry.Id}, scope {entry.Scope}) added to {store}; it is shown only now.");
                    return 0;
                case "revoke":
                    if (positional.Count != 1) { stderr.WriteLine("token revoke needs one id or name."); return HostProgram.ExitConfiguration; }
                    if (TokenStore.Revoke(store, positional[0])) { stderr.WriteLine($"Revoked '{positional[0]}'."); return 0; }
                    stderr.WriteLine($"No token '{positional[0]}' in {store}.");
                    return 1;
                default:
                    foreach (var e in TokenStore.Read(store)) stdout.WriteLine($"{e.Id}\t{e.Name}\t{e.Scope}\t{e.Created:O}");
                    return 0;
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"WgHost token: {e.Message}");
            return HostProgram.ExitConfiguration;
        }
    }
}
