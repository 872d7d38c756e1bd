using System.Text;
using WgEngine.Contracts;

namespace WgEngine.Tun;

/// <summary>
/// What can go wrong creating a TUN interface, as WgExceptions that say what is missing and what to
/// do instead. Pure functions of the errno, so the mapping is testable without privileges.
/// </summary>
internal static class TunErrors
{
    private const string Alternative = "Or use -Egress Userspace, which needs no privileges.";

    /// <summary>Linux's rules for an interface name (dev_valid_name), plus no '%' (a name template
    /// would let the kernel pick a different name than the server's). Throws InvalidTunName.</summary>
    public static void ValidateName(string? name)
    {
        if (string.IsNullOrEmpty(name))
            throw Invalid("An interface name is needed for the TUN device (the server's -Name).");
        int bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes > TunNative.IfNameSize - 1)
            throw Invalid($"The TUN interface is named after the server, and '{name}' is {bytes} bytes long: " +
                          $"Linux allows at most {TunNative.IfNameSize - 1}. Use a shorter -Name with -Egress Tun.");
        if (name is "." or "..")
            throw Invalid($"'{name}' is not a valid interface name.");
        foreach (char c in name)
            if (c is '/' or ':' or '%' || char.IsWhiteSpace(c) || char.IsControl(c))
                throw Invalid($"The interface name '{name}' contains '{(char.IsControl(c) ? "a control character" : c.ToString())}', " +
                              "which Linux does not allow in interface names (no '/', ':', '%' or whitespace). Use another -Name with -Egress Tun.");
    }

    private static WgException Invalid(string message) => new(WgErrorKind.InvalidArgument, "InvalidTunName", message);

    /// <summary>open("/dev/net/tun") failed.</summary>
    public static WgException OpenFailed(int errno) => errno switch
    {
        TunNative.ENOENT or TunNative.ENXIO or TunNative.ENODEV => new(WgErrorKind.ResourceUnavailable, "TunNotAvailable",
            $"{TunNative.DevicePath} is not available ({Describe(errno)}): load the tun kernel module (modprobe tun), " +
            $"or in a container pass the device in (docker run --device /dev/net/tun --cap-add NET_ADMIN). {Alternative}"),
        TunNative.EPERM or TunNative.EACCES => new(WgErrorKind.InvalidOperation, "TunPermissionDenied",
            $"Not allowed to open {TunNative.DevicePath} ({Describe(errno)}): it needs read/write access to the device " +
            $"(in a container: --device /dev/net/tun) and CAP_NET_ADMIN. {Alternative}"),
        _ => new(WgErrorKind.ResourceUnavailable, "TunNotAvailable", $"Could not open {TunNative.DevicePath}: {Describe(errno)}. {Alternative}"),
    };

    /// <summary>TUNSETIFF (creating the interface) failed.</summary>
    public static WgException CreateFailed(string name, int errno) => errno switch
    {
        TunNative.EPERM or TunNative.EACCES => new(WgErrorKind.InvalidOperation, "TunPermissionDenied",
            $"Creating the TUN interface '{name}' needs CAP_NET_ADMIN, which this process does not have ({Describe(errno)}): " +
            $"run as root, grant the capability (setcap cap_net_admin+ep on the host binary, or --cap-add NET_ADMIN in a container). {Alternative}"),
        TunNative.EBUSY or TunNative.EEXIST or TunNative.EINVAL => new(WgErrorKind.AlreadyExists, "TunNameInUse",
            $"An interface named '{name}' already exists ({Describe(errno)}); stop what uses it or pick another server -Name."),
        _ => new(WgErrorKind.ResourceUnavailable, "TunNotAvailable", $"Could not create the TUN interface '{name}': {Describe(errno)}. {Alternative}"),
    };

    /// <summary>Setting the MTU, an address or the up flag failed after the interface was created.</summary>
    public static WgException ConfigFailed(string name, string what, int errno) =>
        new(WgErrorKind.ResourceUnavailable, "TunConfigFailed", $"Could not {what} on TUN interface '{name}': {Describe(errno)}.");

    /// <summary>The kernel's text for an errno, with its symbolic number.</summary>
    public static string Describe(int errno) => $"{Marshal_StrError(errno)} (errno {errno})";

    private static string Marshal_StrError(int errno) => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno);
}
