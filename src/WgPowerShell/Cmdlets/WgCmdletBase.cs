using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgPowerShell.Session;

namespace WgPowerShell.Cmdlets;

/// <summary>Shared plumbing: the runspace's session, -Server resolution, engine errors as PowerShell errors.</summary>
public abstract class WgCmdletBase : PSCmdlet
{
    internal WgSession Session => SessionStore.Current;

    /// <summary>The parameters given on the command line (bound before BeginProcessing), not from the pipeline.</summary>
    private protected HashSet<string> CommandLine { get; private set; } = new(StringComparer.OrdinalIgnoreCase);

    protected override void BeginProcessing()
    {
        CommandLine = new HashSet<string>(MyInvocation.BoundParameters.Keys, StringComparer.OrdinalIgnoreCase);
        base.BeginProcessing();
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, (System.Reflection.PropertyInfo Property, Validation.IDeferredValidation Check)[]> s_deferred = new();

    /// <summary>
    /// Runs the deferred validations (<see cref="Validation.IDeferredValidation"/>) of this record's parameters.
    /// A bad command-line value is terminating (ParameterArgumentValidationError naming the parameter, as at
    /// binding); a bad value from a pipeline object fails that item only, with <paramref name="safeTarget"/>
    /// (never the input object, which may hold secrets) as TargetObject. Call first in ProcessRecord.
    /// </summary>
    internal bool InputIsValid(object? safeTarget)
    {
        var checks = s_deferred.GetOrAdd(GetType(), static t => t.GetProperties()
            .SelectMany(p => p.GetCustomAttributes(true).OfType<Validation.WgValidateAttribute>().Where(a => a.Deferred)
                .Select(a => (p, (Validation.IDeferredValidation)a)))
            .ToArray());
        foreach (var (property, check) in checks)
        {
            if (check.Problem(property.GetValue(this)) is not { } problem) continue;
            var error = new ErrorRecord(new ParameterBindingException($"Cannot validate argument on parameter '{property.Name}'. {problem}"),
                "ParameterArgumentValidationError", ErrorCategory.InvalidData, CommandLine.Contains(property.Name) ? null : safeTarget);
            if (CommandLine.Contains(property.Name)) ThrowTerminatingError(error);
            WriteError(error);
            return false;
        }
        return true;
    }

    /// <summary>
    /// The server named, or the only one when no name is given. No server / several servers without a
    /// name is unusable input (terminating); an unknown name is a per-item ObjectNotFound (returns null).
    /// </summary>
    internal IGatewayServer? ResolveServer(string? name)
    {
        if (!string.IsNullOrEmpty(name))
        {
            if (Session.TryGet(name, out var s)) return s;
            WriteError(new ErrorRecord(
                new ItemNotFoundException($"No WireGuard server named '{name}' in this session. Get-WgServer lists them."),
                "WgServerNotFound", ErrorCategory.ObjectNotFound, name));
            return null;
        }
        var all = Session.All();
        if (all.Count == 1) return all[0];
        if (all.Count == 0)
            ThrowTerminatingError(new ErrorRecord(
                new InvalidOperationException("No WireGuard server is running in this session; start one with Start-WgServer."),
                "NoWgServer", ErrorCategory.ObjectNotFound, null));
        ThrowTerminatingError(new ErrorRecord(
            new ArgumentException($"This session has {all.Count} servers ({string.Join(", ", all.Select(x => x.Name))}); say which with -Server."),
            "WgServerAmbiguous", ErrorCategory.InvalidArgument, null));
        return null;
    }

    /// <summary>An engine failure for one item: non-terminating, FullyQualifiedErrorId = the engine's ErrorId.</summary>
    internal void WriteWgError(WgException e, object? target) =>
        WriteError(new ErrorRecord(e, e.ErrorId, Category(e.Kind), target));

    internal static ErrorCategory Category(WgErrorKind kind) => kind switch
    {
        WgErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        WgErrorKind.AlreadyExists => ErrorCategory.ResourceExists,
        WgErrorKind.NotFound => ErrorCategory.ObjectNotFound,
        WgErrorKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        WgErrorKind.LimitExceeded => ErrorCategory.LimitsExceeded,
        WgErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
        _ => ErrorCategory.NotSpecified,
    };

    internal static string ShortKey(string base64) => base64.Length > 8 ? base64[..8] + "..." : base64;

    internal static string Describe(string? name, string key) =>
        string.IsNullOrEmpty(name) ? ShortKey(key) : $"'{name}' ({ShortKey(key)})";
}
