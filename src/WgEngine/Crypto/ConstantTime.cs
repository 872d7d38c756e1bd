using System.Security.Cryptography;

namespace WgEngine.Crypto;

/// <summary>Comparisons of secret-dependent data (MACs, tags, cookies) whose timing must not depend on contents.</summary>
internal static class ConstantTime
{
    /// <summary>True when both spans have the same length and contents; time depends only on the length.</summary>
    public static bool Equals(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => CryptographicOperations.FixedTimeEquals(a, b);
}
