<#
.SYNOPSIS
  End-to-end throughput: iperf3 (TCP, one stream) between two wireguard-go clients,
  (a) tunnelled directly to each other, (b1) through a wireguard-go hub with kernel forwarding
  (the reference), (b2) through our gateway (Start-WgServer -Egress None) when the module is built.
.DESCRIPTION
  All topologies are built once in the same run (namespaces from tests/Interop/WgInterop.psm1; UDP
  only on 127.0.0.1), then measured in rounds whose order rotates (A/B alternation), and the median of
  the rounds is reported with ratios to the direct tunnel and to the wireguard-go hub. Each iperf3 run
  is bounded (killed after Duration + 20 s). Everything is removed afterwards, also on failure.
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/e2e/hub-iperf.ps1 -Duration 10 -Rounds 3
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/e2e/hub-iperf.ps1 -Duration 10 -Rounds 5 -WithPolicy
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 120)][int]$Duration = 10,
    [ValidateRange(1, 9)][int]$Rounds = 3,
    [string]$Module,                  # manifest of our module; default ./module/WireGuardGateway.psd1 if built
    [switch]$SkipGateway,
    [switch]$WithPolicy,              # add the policy-on gateway (b3)
    [string]$OutJson,
    [switch]$PassThru                 # also output the summary objects (for run-bench.ps1)
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
Import-Module (Join-Path $repoRoot 'tests/Interop/WgInterop.psm1') -Force
Import-Module (Join-Path $PSScriptRoot 'HubTopologies.psm1') -Force

$prereq = Test-WgInteropPrerequisite
$missing = @($prereq.Missing) + @(if (-not (Get-Command iperf3 -ErrorAction Ignore)) { 'iperf3' })
if ($missing.Count) { throw "hub-iperf needs: $($missing -join ', ') (see .ci/run)" }

function Invoke-Iperf($Server, $Client, [string]$Target) {
    # One-off server (-1) in the receiving namespace, bound to its tunnel address only.
    $srv = Start-Process -FilePath ip -ArgumentList 'netns', 'exec', $Server.Namespace, 'iperf3', '-s', '-1', '-B', $Target, '-p', '5201' `
        -PassThru -RedirectStandardOutput (Join-Path $net.TempDir "iperf3-server-$([guid]::NewGuid().ToString("n")).log")
    try {
        $port = $null
        $ready = Wait-WgCondition {
            (Invoke-InNamespace $Server.Namespace ss '-Hltn', "src $Target" -AllowFailure) -match ':5201'
        } -TimeoutSeconds 5
        if (-not $ready) { throw "iperf3 server did not start in $($Server.Namespace)" }
        $psi = [System.Diagnostics.ProcessStartInfo]::new('ip')
        foreach ($a in 'netns', 'exec', $Client.Namespace, 'iperf3', '-c', $Target, '-p', '5201', '-t', "$Duration", '-J', '--connect-timeout', '3000') {
            $psi.ArgumentList.Add($a)
        }
        $psi.RedirectStandardOutput = $true; $psi.UseShellExecute = $false
        $p = [System.Diagnostics.Process]::Start($psi)
        $outTask = $p.StandardOutput.ReadToEndAsync()
        if (-not $p.WaitForExit(($Duration + 20) * 1000)) { $p.Kill($true); throw "iperf3 client exceeded $($Duration + 20) s" }
        $j = $outTask.GetAwaiter().GetResult() | ConvertFrom-Json
        if ($j.PSObject.Properties['error']) { throw "iperf3: $($j.error)" }
        [pscustomobject]@{
            Mbps        = [math]::Round($j.end.sum_received.bits_per_second / 1e6, 1)
            Bytes       = [long]$j.end.sum_received.bytes
            Retransmits = [long]$j.end.sum_sent.retransmits
        }
    } finally {
        if (-not $srv.HasExited) { $srv.Kill() }
    }
}

$net = New-WgTestNetwork
$server = $null
$results = [System.Collections.Generic.List[object]]::new()
try {
    $built = New-HubTopologies -Network $net -RepoRoot $repoRoot -Module $Module -SkipGateway:$SkipGateway -WithPolicy:$WithPolicy -ServerName "gwb$($net.RunId)"
    $topos = $built.Topologies; $server = $built.Server

    $names = @($topos.Keys)
    for ($r = 0; $r -lt $Rounds; $r++) {
        $order = Get-RoundOrder $names $r
        foreach ($name in $order) {
            $t = $topos[$name]
            $cpu0 = if ($t.Hub) { $t.Hub.Refresh(); $t.Hub.TotalProcessorTime.TotalSeconds } else { 0 }
            # Our gateway runs in this process: its gen-0 collections during the run (the script itself
            # only waits on iperf3) show whether the data path allocates per packet.
            $inProcess = $t.Hub -and $t.Hub.Id -eq $PID
            $gen0 = [GC]::CollectionCount(0)
            $m = Invoke-Iperf -Server $t.S -Client $t.C -Target $t.Target
            $gen0 = [GC]::CollectionCount(0) - $gen0
            $cpu = if ($t.Hub) { $t.Hub.Refresh(); $t.Hub.TotalProcessorTime.TotalSeconds - $cpu0 } else { $null }
            # Packets relayed: each received byte crossed the hub once, in full-size (MSS) segments.
            $packets = [math]::Max(1, $m.Bytes / 1380)
            $results.Add([pscustomobject]@{ Round = $r + 1; Topology = $name; Mbps = $m.Mbps; Retransmits = $m.Retransmits
                    HubCpuSecPerGB = if ($null -ne $cpu -and $m.Bytes) { [math]::Round($cpu / ($m.Bytes / 1e9), 1) } else { $null }
                    Gen0PerMillionPackets = if ($inProcess) { [math]::Round($gen0 / ($packets / 1e6), 1) } else { $null } })
            Write-Host ("round {0}: {1,-42} {2,8:N1} Mbit/s" -f ($r + 1), $name, $m.Mbps)
        }
    }
} finally {
    # Every gateway this run started (also one a failed New-HubTopologies never returned) by its
    # run-unique name prefix.
    if (Get-Command Get-WgServer -ErrorAction Ignore) {
        Get-WgServer | Where-Object Name -Like "gwb$($net.RunId)*" | ForEach-Object { Stop-WgServer -Name $_.Name -Confirm:$false -ErrorAction Continue }
    }
    Remove-WgTestNetwork $net
}

$direct = Get-Median @($results | Where-Object Topology -Like 'direct*' | ForEach-Object Mbps)
$refHub = Get-Median @($results | Where-Object Topology -Like 'hub: wireguard-go*' | ForEach-Object Mbps)
$summary = foreach ($name in $names) {
    $rows = @($results | Where-Object Topology -EQ $name)
    $med = Get-Median @($rows | ForEach-Object Mbps)
    $cpuRows = @($rows | Where-Object { $null -ne $_.HubCpuSecPerGB })
    [pscustomobject]@{
        Topology         = $name
        MedianMbps       = $med
        Runs             = ($rows.Mbps | ForEach-Object { '{0:N0}' -f $_ }) -join ' / '
        VsDirect         = [math]::Round($med / $direct, 2)
        VsWireGuardGoHub = [math]::Round($med / $refHub, 2)
        HubCpuSecPerGB   = if ($cpuRows.Count) { Get-Median @($cpuRows.HubCpuSecPerGB) } else { $null }
        Gen0PerMillionPackets = if (@($rows | Where-Object { $null -ne $_.Gen0PerMillionPackets }).Count) { Get-Median @($rows.Gen0PerMillionPackets | Where-Object { $null -ne $_ }) } else { $null }
    }
}
$summary | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
$policyOn = @($summary | Where-Object Topology -EQ 'hub: WireGuardGateway, policy on')
$policyOff = @($summary | Where-Object Topology -EQ 'hub: WireGuardGateway (this pwsh)')
if ($policyOn.Count -and $policyOff.Count -and $policyOff[0].MedianMbps) {
    Write-Host ("policy on / off (same run, medians): {0:N2}x throughput; hub CPU-s per GB {1} / {2}" -f `
        ($policyOn[0].MedianMbps / $policyOff[0].MedianMbps), $policyOn[0].HubCpuSecPerGB, $policyOff[0].HubCpuSecPerGB)
}
if ($OutJson) {
    [pscustomobject]@{ Duration = $Duration; Rounds = $Rounds; Summary = $summary; Runs = $results } |
        ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $OutJson
}
if ($PassThru) { $summary }
