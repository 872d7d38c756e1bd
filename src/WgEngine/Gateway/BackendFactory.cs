using WgEngine.Contracts;

namespace WgEngine.Gateway;

/// <summary>
/// Builds a server's backend from its <see cref="BackendKind"/> and says what each kind can do. Adding a
/// backend is one enum value, one registration below and the backend's own file.
/// </summary>
public static class BackendFactory
{
    /// <param name="Options">The server's options as given.</param>
    /// <param name="Interface">The interface to start; null for a backend that does not own the private key
    /// (the external device has its own key, port and MTU).</param>
    private sealed record Registration(BackendCapabilities Capabilities, Func<ServerOptions, InterfaceConfig?, IWireGuardBackend> Create);

    private static readonly Dictionary<BackendKind, Registration> Registrations = new()
    {
        [BackendKind.Userspace] = new(
            new BackendCapabilities
            {
                OwnsPrivateKey = true, ServesUapi = true, HasEgress = true, Persists = true, EnforcesPolicy = true, SetsMtu = true, OwnsSocket = true,
            },
            static (_, config) => new UserspaceBackend(config!)),
        [BackendKind.Uapi] = new(
            new BackendCapabilities { ManagesUapiDevice = true },
            static (options, _) => new Uapi.UapiBackend(
                string.IsNullOrEmpty(options.UapiPath)
                    ? throw new WgException(WgErrorKind.InvalidArgument, "UapiPathRequired", "Backend 'Uapi' needs the device's UAPI socket (-UapiPath).")
                    : options.UapiPath,
                options.PrivateKey,
                // The external device keeps its own port unless one is given.
                options.ListenPort == ServerOptions.KeepDevicePort ? null : options.ListenPort)),
        // docs/kernel-backend.md: the kernel routes the peers' traffic and `wg` speaks netlink to the link itself.
        [BackendKind.Kernel] = new(
            new BackendCapabilities { OwnsPrivateKey = true, Persists = true, SetsMtu = true },
            static (_, config) => new Kernel.KernelBackend(config!.Name ?? "", config.PrivateKey, config.ListenPort, config.Addresses, config.Mtu)),
    };

    /// <summary>The kinds there are.</summary>
    public static IReadOnlyCollection<BackendKind> Kinds => Registrations.Keys;

    /// <summary>What a backend of this kind does. Throws WgException(BackendNotAvailable) for an unknown kind.</summary>
    public static BackendCapabilities CapabilitiesOf(BackendKind kind) => Find(kind).Capabilities;

    /// <summary>Builds (and so starts) a backend; <paramref name="config"/> is null exactly when the kind does not own the private key.</summary>
    internal static IWireGuardBackend Create(BackendKind kind, ServerOptions options, InterfaceConfig? config) => Find(kind).Create(options, config);

    private static Registration Find(BackendKind kind) =>
        Registrations.TryGetValue(kind, out var r) ? r
            : throw new WgException(WgErrorKind.InvalidOperation, "BackendNotAvailable",
                $"Backend '{kind}' is not available; use one of {string.Join(", ", Registrations.Keys)}.");
}
