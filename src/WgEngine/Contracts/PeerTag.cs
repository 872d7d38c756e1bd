namespace WgEngine.Contracts;

/// <summary>The names of the groups peers carry (their rules apply to the peer after its own).</summary>
public static class PeerTag
{
    public const int MaxLength = 32;

    /// <summary>Tags are short names (1-32) of letters, digits, '-', '_' and '.'.</summary>
    public static bool IsValid(string? tag) =>
        !string.IsNullOrEmpty(tag) && tag.Length <= MaxLength && tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
