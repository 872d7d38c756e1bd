using System.Diagnostics;
using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgPowerShell.Models;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Group commit for cmdlets that add many peers from the pipeline (Add-WgPeer, Import-WgConfig): items
/// are collected and handed to VPNServer.AddPeers, which writes the config file once per batch. A batch
/// is committed after ~100 ms or at 10,000 items, whichever comes first, but commits take at most ~20%
/// of the time: when the last one took longer (a file of 100,000 peers), the next waits 4x as long
/// whatever the item count (else the whole file would be rewritten every 10,000 items: quadratic in the
/// peer count). Also committed when the target server changes, and in EndProcessing. Output objects are
/// written only after the commit that covers them, so a WgPeer on the pipeline always means "in effect
/// and on disk".
/// </summary>
internal sealed class PeerBatch
{
    private const int MaxItems = 10_000;
    private static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(100);

    private readonly List<PeerSpec> _specs = new();
    private readonly List<string> _targets = new();
    private IGatewayServer? _server;
    private bool _allocate;
    private long _firstTicks;
    private TimeSpan _interval = MinInterval;
    private TimeSpan _commitBound;   // 4x the last commit's duration

    public void Add(WgCmdletBase cmdlet, IGatewayServer server, PeerSpec spec, string target, bool allocateWhenEmpty)
    {
        if (_server is not null && (!ReferenceEquals(_server, server) || _allocate != allocateWhenEmpty)) Flush(cmdlet);
        if (_specs.Count == 0) _firstTicks = Stopwatch.GetTimestamp();
        _server = server;
        _allocate = allocateWhenEmpty;
        _specs.Add(spec);
        _targets.Add(target);
        var elapsed = Stopwatch.GetElapsedTime(_firstTicks);
        if (elapsed >= _interval || (_specs.Count >= MaxItems && elapsed >= _commitBound)) Flush(cmdlet);
    }

    public void Flush(WgCmdletBase cmdlet)
    {
        if (_server is null || _specs.Count == 0) return;
        var server = _server;
        var specs = _specs.ToArray();
        var targets = _targets.ToArray();
        _specs.Clear();
        _targets.Clear();
        long start = Stopwatch.GetTimestamp();
        IReadOnlyList<PeerBatchResult> results;
        try
        {
            results = server.AddPeers(specs, _allocate);
        }
        catch (WgException e)
        {
            // The file write failed: none of these is confirmed.
            for (int i = 0; i < targets.Length; i++) cmdlet.WriteWgError(e, targets[i]);
            return;
        }
        // Let a slow write (a large file) commit less often: writing takes at most ~20% of the time.
        var took = Stopwatch.GetElapsedTime(start);
        _commitBound = took * 4;
        _interval = _commitBound > MinInterval ? _commitBound : MinInterval;
        bool verbose = IsVerbose(cmdlet);   // formatting a message per peer is wasted work when nobody sees it
        for (int i = 0; i < results.Count; i++)
        {
            if (results[i].Error is { } error) { cmdlet.WriteWgError(error, targets[i]); continue; }
            var status = results[i].Status!;
            if (verbose)
                cmdlet.WriteVerbose($"Added peer {WgCmdletBase.Describe(status.Name, targets[i])} with {string.Join(", ", status.AllowedIPs)} to '{server.Name}'.");
            cmdlet.WriteObject(WgPeer.From(server.Name, status));
        }
    }

    /// <summary>-Verbose given (and not -Verbose:$false), or $VerbosePreference asks for verbose output.</summary>
    private static bool IsVerbose(WgCmdletBase cmdlet)
    {
        if (cmdlet.MyInvocation.BoundParameters.TryGetValue("Verbose", out var v))
            return v is SwitchParameter s ? s.IsPresent : v is true;
        // A child scope's `$VerbosePreference = 'Continue'` is a plain string: convert as PowerShell does.
        return LanguagePrimitives.TryConvertTo(cmdlet.GetVariableValue("VerbosePreference"), out ActionPreference p)
            && p is not (ActionPreference.SilentlyContinue or ActionPreference.Ignore);
    }
}
