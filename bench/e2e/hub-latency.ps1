<#
.SYNOPSIS
  End-to-end latency (issue 7 item 6): round-trip time of ping between two wireguard-go clients,
  (a) tunnelled directly to each other (the floor), (b1) through a wireguard-go hub with kernel
  forwarding (the reference), (b2) through our gateway (Start-WgServer -Egress None) when built.
.DESCRIPTION
  Same topology as hub-iperf.ps1 (namespaces from tests/Interop/WgInterop.psm1; UDP only on
  127.0.0.1). Per topology and round: `ping -n -c 200 -i 0.01 -W 1` from client 1 to client 2's tunnel
  address; the per-sample RTTs are parsed and median, p99 (nearest rank over the replies), max and loss
  reported. Rounds rotate the order; the summary is the median over rounds of each figure, with the
  ratio ours / wireguard-go hub for median and p99 (target: <= 1). Each ping run is killed after
  -TimeoutSeconds. Everything is removed afterwards, also on failure.
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/e2e/hub-latency.ps1 -Count 200 -Rounds 3
#>
[CmdletBinding()]
param(
    [ValidateRange(10, 10000)][int]$Count = 200,
    [ValidateRange(1, 9)][int]$Rounds = 3,
    [ValidateRange(5, 600)][int]$TimeoutSeconds = 60,   # per ping run
    [string]$Module,                  # manifest of our module; default ./module/WireGuardGateway.psd1 if built
    [switch]$SkipGateway,
    [string]$OutJson,
    [switch]$PassThru
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
Import-Module (Join-Path $repoRoot 'tests/Interop/WgInterop.psm1') -Force
Import-Module (Join-Path $PSScriptRoot 'HubTopologies.psm1') -Force

$prereq = Test-WgInteropPrerequisite
$missing = @($prereq.Missing) + @(if (-not (Get-Command ping -ErrorAction Ignore)) { 'ping' })
if ($missing.Count) { throw "hub-latency needs: $($missing -join ', ') (see .ci/run)" }

$inv = [System.Globalization.CultureInfo]::InvariantCulture
function Get-Percentile([double[]]$sorted, [double]$p) {
    # Nearest rank: the smallest sample with at least p of the samples at or below it.
    $sorted[[math]::Max(0, [int][math]::Ceiling($p * $sorted.Count) - 1)]
}

function Invoke-PingRtt([string]$Namespace, [string]$Target) {
    $psi = [System.Diagnostics.ProcessStartInfo]::new('ip')
    foreach ($a in 'netns', 'exec', $Namespace, 'ping', '-n', '-c', "$Count", '-i', '0.01', '-W', '1', $Target) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true; $psi.UseShellExecute = $false
    $p = [System.Diagnostics.Process]::Start($psi)
    $outTask = $p.StandardOutput.ReadToEndAsync(); $errTask = $p.StandardError.ReadToEndAsync()
    if (-not $p.WaitForExit($TimeoutSeconds * 1000)) { $p.Kill($true); throw "ping exceeded $TimeoutSeconds s ($Namespace -> $Target)" }
    $text = $outTask.GetAwaiter().GetResult()
    $tx = 0; $rx = 0
    if ($text -match '(\d+) packets transmitted, (\d+) received') { $tx = [int]$Matches[1]; $rx = [int]$Matches[2] }
    else { throw "ping printed no summary ($Namespace -> $Target): $($errTask.GetAwaiter().GetResult())" }
    # One reply line per sample: "64 bytes from ...: icmp_seq=N ttl=64 time=0.123 ms" (duplicates ignored).
    $seen = [System.Collections.Generic.HashSet[int]]::new()
    $rtts = [System.Collections.Generic.List[double]]::new()
    foreach ($m in [regex]::Matches($text, 'icmp_seq=(\d+) .*?time=([\d.]+) ms(?! \(DUP)')) {
        if ($seen.Add([int]$m.Groups[1].Value)) { $rtts.Add([double]::Parse($m.Groups[2].Value, $inv)) }
    }
    if ($rtts.Count -ne $rx) { throw "parsed $($rtts.Count) RTTs but ping reports $rx replies ($Namespace -> $Target)" }
    if ($rx -eq 0) { throw "no reply at all ($Namespace -> $Target)" }
    $s = [double[]]($rtts | Sort-Object)
    [pscustomobject]@{
        MedianMs = [math]::Round((Get-Median $s), 3)
        P99Ms    = [math]::Round((Get-Percentile $s 0.99), 3)
        MaxMs    = [math]::Round($s[-1], 3)
        LossPct  = [math]::Round(100.0 * ($tx - $rx) / $tx, 1)
        Samples  = $rx
    }
}

$net = New-WgTestNetwork
$server = $null
$results = [System.Collections.Generic.List[object]]::new()
try {
    $built = New-HubTopologies -Network $net -RepoRoot $repoRoot -Module $Module -SkipGateway:$SkipGateway -ServerName "gwl$($net.RunId)"
    $topos = $built.Topologies; $server = $built.Server

    $names = @($topos.Keys)
    for ($r = 0; $r -lt $Rounds; $r++) {
        $order = Get-RoundOrder $names $r
        foreach ($name in $order) {
            $t = $topos[$name]
            $m = Invoke-PingRtt -Namespace $t.C.Namespace -Target $t.Target
            $results.Add([pscustomobject]@{ Round = $r + 1; Topology = $name; MedianMs = $m.MedianMs; P99Ms = $m.P99Ms
                    MaxMs = $m.MaxMs; LossPct = $m.LossPct; Samples = $m.Samples })
            Write-Host ("round {0}: {1,-42} median {2,7:N3} ms  p99 {3,7:N3} ms  max {4,7:N3} ms  loss {5}%" -f
                ($r + 1), $name, $m.MedianMs, $m.P99Ms, $m.MaxMs, $m.LossPct)
        }
    }
} finally {
    if ($server) { Stop-WgServer -Name $server.Name -Confirm:$false -ErrorAction Continue }
    Remove-WgTestNetwork $net
}

$refRows = @($results | Where-Object Topology -Like 'hub: wireguard-go*')
$refMed = Get-Median @($refRows.MedianMs); $refP99 = Get-Median @($refRows.P99Ms)
$summary = foreach ($name in $names) {
    $rows = @($results | Where-Object Topology -EQ $name)
    $med = Get-Median @($rows.MedianMs); $p99 = Get-Median @($rows.P99Ms)
    [pscustomobject]@{
        Topology        = $name
        MedianMs        = $med
        P99Ms           = $p99
        MaxMs           = Get-Median @($rows.MaxMs)
        LossPct         = Get-Median @($rows.LossPct)
        RoundsMedian    = ($rows.MedianMs | ForEach-Object { $_.ToString('0.000', $inv) }) -join ' / '
        RoundsP99       = ($rows.P99Ms | ForEach-Object { $_.ToString('0.000', $inv) }) -join ' / '
        MedianVsWgGoHub = [math]::Round($med / $refMed, 2)
        P99VsWgGoHub    = [math]::Round($p99 / $refP99, 2)
    }
}
$summary | Format-Table -AutoSize | Out-String -Width 220 | Write-Host
if ($OutJson) {
    [pscustomobject]@{ Count = $Count; Rounds = $Rounds; Summary = $summary; Runs = $results } |
        ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $OutJson
}
if ($PassThru) { $summary }
