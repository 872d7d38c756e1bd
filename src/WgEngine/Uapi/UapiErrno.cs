namespace WgEngine.Uapi;

/// <summary>
/// The errno values a UAPI server answers with (`errno=N` line). Source of the values: wireguard-go
/// ipc/uapi_unix.go, which sends the negated Linux errno; `wg` prints the absolute value.
/// </summary>
internal static class UapiErrno
{
    public const int Ok = 0;
    /// <summary>-EIO: reading the request failed (e.g. a line longer than the scanner allows).</summary>
    public const int IO = -5;
    /// <summary>-EPROTO: a line without '='.</summary>
    public const int Protocol = -71;
    /// <summary>-EINVAL: an unknown key or a value that does not parse.</summary>
    public const int Invalid = -22;
    /// <summary>-EROFS: the server runs from a read-only config file and refuses changes.</summary>
    public const int ReadOnly = -30;
    /// <summary>-EADDRINUSE: the listen port (or fwmark) could not be applied to the socket.</summary>
    public const int PortInUse = -98;
    /// <summary>wireguard-go's "unknown" code (ENOANO).</summary>
    public const int Unknown = -55;
}

/// <summary>A UAPI failure with the errno to answer.</summary>
internal sealed class UapiException(int errno, string message) : Exception(message)
{
    public int Errno { get; } = errno;
}
