using System.Management.Automation;
using WgEngine.Gateway;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Add-WgPeer: adds one peer per pipeline item. Without -AllowedIPs a free pool address is allocated.
/// A duplicate key, an overlap or an exhausted pool fails that item only (non-terminating).
/// </summary>
[Cmdlet(VerbsCommon.Add, "WgPeer", SupportsShouldProcess = true)]
[OutputType(typeof(WgPeer))]
public sealed class AddWgPeerCommand : WgPeerCmdletBase
{
    // Deferred validation on every pipeline-bound parameter: a row refused at binding would sit whole,
    // PresharedKey included, in the error record (see IDeferredValidation).
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateWgKey(Deferred = true)]
    public string PublicKey { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowEmptyCollection, AllowEmptyString, AllowNull]
    [ValidateCidr(Deferred = true)]
    public string[]? AllowedIPs { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString, AllowNull]
    public string? Name { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString, AllowNull]
    [ValidateWgKey(AllowEmpty = true, Deferred = true)]
    public string? PresharedKey { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowEmptyString, AllowNull]
    [ValidateEndpoint(Deferred = true)]
    public string? Endpoint { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [LenientInt]
    [ValidateWgRange(0, 65535, Deferred = true)]
    public int PersistentKeepalive { get; set; }

    /// <summary>When the peer is disabled automatically; omitted = never.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [LenientDate]
    [ValidateWgDate(Deferred = true)]
    public DateTimeOffset? ExpiresAt { get; set; }

    private readonly PeerBatch _batch = new();

    protected override void ProcessRecord()
    {
        if (!InputIsValid(Parse.IsKey(PublicKey) ? PublicKey : null)) return;
        var server = ResolveServer();
        if (server is null) return;
        if (FromServerObject(nameof(PublicKey))) { WriteServerIsNotAPeer(); return; }
        if (FromServerObject(nameof(Name))) Name = null;   // the server's name, not the peer's
        var key = Parse.Key(PublicKey);
        // The common bulk case (no AllowedIPs: allocate) needs no list per item.
        IReadOnlyList<WgEngine.Net.IpPrefix> allowed = AllowedIPs is { Length: > 0 } ? Parse.Prefixes(AllowedIPs) : [];
        var what = allowed.Count == 0 ? "an allocated address" : string.Join(", ", allowed);
        if (!ShouldProcess($"peer {Describe(Name, PublicKey)} with {what} on server '{server.Name}'", "Add")) return;
        if (!TryEndpoint(Endpoint, out var endpoint, out var endpointText)) return;
        var spec = new PeerSpec
        {
            PublicKey = key,
            AllowedIPs = allowed,
            Name = string.IsNullOrEmpty(Name) ? null : Name,
            PresharedKey = string.IsNullOrEmpty(PresharedKey) ? null : Parse.Key(PresharedKey),
            Endpoint = endpoint,
            EndpointText = endpointText,
            PersistentKeepalive = PersistentKeepalive,
            ExpiresAt = ExpiresAt,
        };
        _batch.Add(this, server, spec, PublicKey, allocateWhenEmpty: true);
    }

    protected override void EndProcessing() => _batch.Flush(this);
}
