namespace WgEngine.Contracts;

/// <summary>What kind of failure, so that front ends (cmdlets) can map it to their own categories.</summary>
public enum WgErrorKind
{
    InvalidArgument,
    AlreadyExists,
    NotFound,
    ResourceUnavailable,
    LimitExceeded,
    InvalidOperation,
    /// <summary>Input data (a config file, imported text) is malformed or inconsistent.</summary>
    InvalidData,
}

/// <summary>A failure the user can act on. Messages never contain key material.</summary>
public sealed class WgException : Exception
{
    public WgException(WgErrorKind kind, string errorId, string message, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        ErrorId = errorId;
    }

    public WgErrorKind Kind { get; }

    /// <summary>Stable identifier, e.g. "PeerAlreadyExists"; becomes the cmdlet error's FullyQualifiedErrorId.</summary>
    public string ErrorId { get; }
}
