using System.Management.Automation;
using WgEngine.Contracts;
using WgPowerShell.Completion;
using WgEngine.Gateway;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Set-WgPeer: changes a peer in place without dropping its session. Omitted parameters stay as they are.
/// Pipeline input is collected and applied in one engine call per server (one config write), at the end of
/// the pipeline or every <see cref="RemoveWgPeerCommand.MaxBatch"/> items; -PassThru output follows that commit.
/// </summary>
[Cmdlet(VerbsCommon.Set, "WgPeer", SupportsShouldProcess = true)]
[OutputType(typeof(WgPeer))]
public sealed class SetWgPeerCommand : WgPeerCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateWgKey]
    [ArgumentCompleter(typeof(PeerKeyCompleter))]
    public string PublicKey { get; set; } = "";

    /// <summary>Replaces the AllowedIPs; an empty array clears them.</summary>
    [Parameter]
    [AllowEmptyCollection]
    [ValidateCidr]
    public string[]? AllowedIPs { get; set; }

    [Parameter]
    public string? Name { get; set; }

    /// <summary>A new preshared key; '' removes it.</summary>
    [Parameter]
    [AllowEmptyString]
    [ValidateWgKey(AllowEmpty = true)]
    public string? PresharedKey { get; set; }

    [Parameter]
    [ValidateEndpoint]
    public string? Endpoint { get; set; }

    [Parameter]
    [ValidateRange(0, 65535)]
    public int? PersistentKeepalive { get; set; }


    /// <summary>When the peer is disabled automatically (a time already past disables it at once).</summary>
    [Parameter]
    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>Removes the expiry.</summary>
    [Parameter]
    public SwitchParameter ClearExpiry { get; set; }

    // Traffic policy (docs/policy.md): the peer's tags and its own ordered ACL; @() clears either.
    /// <summary>The peer's tags (their rules apply after its own); replaces the tags it had.</summary>
    [Parameter]
    [AllowEmptyCollection]
    [ValidateTag]
    public string[]? Tag { get; set; }

    /// <summary>The peer's own ordered rules, e.g. 'allow 10.1.0.5/32 tcp 443', 'deny 10.1.0.0/16'; replaces its rules.</summary>
    [Parameter]
    [AllowEmptyCollection]
    [ValidateAcl]
    public string[]? Acl { get; set; }

    /// <summary>Bandwidth of what the peer sends, in Mbit/s; 0 removes the limit.</summary>
    [Parameter]
    [ValidateRange(0.0, 100_000.0)]
    public double? UploadLimitMbps { get; set; }

    /// <summary>Bandwidth of what the peer receives, in Mbit/s; 0 removes the limit.</summary>
    [Parameter]
    [ValidateRange(0.0, 100_000.0)]
    public double? DownloadLimitMbps { get; set; }

    /// <summary>The burst above the rate, in bytes, for the limits given with it; default half a second at the rate (at least 64 KiB).</summary>
    [Parameter]
    [ValidateRange(1500, 1L << 32)]
    public long? LimitBurstBytes { get; set; }

    /// <summary>The data quota in bytes (both directions), e.g. 50GB; 0 removes it. Used up, the peer is disabled (DisabledReason QuotaExceeded).</summary>
    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long? QuotaBytes { get; set; }

    /// <summary>The period the quota counts over (calendar, UTC); default Month.</summary>
    [Parameter]
    public WgEngine.Policy.QuotaPeriod QuotaPeriod { get; set; } = WgEngine.Policy.QuotaPeriod.Month;

    /// <summary>Outputs the changed peer.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private readonly List<(WgEngine.Crypto.WgKey Key, PeerUpdate Update, string Text)> _pending = new();
    private IGatewayServer? _pendingServer;

    private WgEngine.Policy.RateLimit? Limit(double? mbps) =>
        mbps is { } m ? new WgEngine.Policy.RateLimit(m == 0 ? 0 : Math.Max(WgEngine.Policy.RateLimit.MinBitsPerSecond, (long)Math.Round(m * 1_000_000)), LimitBurstBytes ?? 0) : null;

    protected override void ProcessRecord()
    {
        var server = ResolveServer();
        if (server is null) return;
        if (FromServerObject(nameof(PublicKey))) { WriteServerIsNotAPeer(); return; }
        var key = Parse.Key(PublicKey);
        var current = server.GetPeerInfo(key);
        if (current is null)
        {
            WritePeerNotFound(server, PublicKey);
            return;
        }
        if (!TryEndpoint(Endpoint, out var endpoint, out var endpointText)) return;
        var update = new PeerUpdate
        {
            AllowedIPs = AllowedIPs is null ? null : Parse.Prefixes(AllowedIPs),
            Name = Name,
            PresharedKey = string.IsNullOrEmpty(PresharedKey) ? null : Parse.Key(PresharedKey),
            ClearPresharedKey = PresharedKey is "",
            Endpoint = endpoint,
            EndpointText = endpointText,
            PersistentKeepalive = PersistentKeepalive,
            ExpiresAt = ExpiresAt,
            ClearExpiresAt = ClearExpiry,
            Tags = Tag is null ? null : ValidateTagAttribute.Split(Tag),
            Acl = Acl is null ? null : ValidateAclAttribute.Rules(Acl),
            UploadLimit = Limit(UploadLimitMbps),
            DownloadLimit = Limit(DownloadLimitMbps),
            Quota = QuotaBytes is { } qb ? new WgEngine.Policy.DataQuota(qb, QuotaPeriod) : null,
        };
        if (ClearExpiry && ExpiresAt is not null)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("Give either -ExpiresAt or -ClearExpiry, not both."),
                "ExpiryConflict", ErrorCategory.InvalidArgument, null));
        if (!ShouldProcess($"peer {Describe(current.Name, PublicKey)} on server '{server.Name}'", "Set")) return;
        if (!ReferenceEquals(_pendingServer, server)) Commit();
        _pendingServer = server;
        _pending.Add((key, update, PublicKey));
        if (_pending.Count >= RemoveWgPeerCommand.MaxBatch) Commit();
    }

    protected override void EndProcessing() => Commit();

    private void Commit()
    {
        if (_pendingServer is not { } server || _pending.Count == 0) return;
        var items = _pending.ToArray();
        _pending.Clear();
        IReadOnlyList<PeerBatchResult> results;
        try
        {
            results = server.UpdatePeers(items.Select(i => (i.Key, i.Update)).ToArray());
        }
        catch (WgException e)
        {
            foreach (var item in items) WriteWgError(e, item.Text);
            return;
        }
        for (int i = 0; i < items.Length; i++)
        {
            if (results[i].Error is { } error) { WriteWgError(error, items[i].Text); continue; }
            var status = results[i].Status!;
            WriteVerbose($"Updated peer {Describe(status.Name, items[i].Text)} on '{server.Name}'.");
            if (PassThru) WriteObject(WgPeer.From(server.Name, status));
        }
    }
}
