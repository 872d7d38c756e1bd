namespace WgPowerShell.Models;

/// <summary>A tag of a server: a group of peers that share ordered access rules (Get-WgTag, Set-WgTag).</summary>
public sealed class WgTag
{
    public required string Server { get; init; }
    public required string Name { get; init; }
    /// <summary>The tag's ordered rules (text form); they apply after each member's own.</summary>
    public string[] Acl { get; init; } = [];
    /// <summary>Peers that carry the tag.</summary>
    public int PeerCount { get; init; }

    public override string ToString() => Name;
}
