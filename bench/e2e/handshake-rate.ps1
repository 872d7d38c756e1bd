<#
.SYNOPSIS
  Responder handshakes per second and per CPU-second (issue 7 item 4), ours against wireguard-go in
  the same run: `tools/Flood --measure --target ours|wggo`, alternated for -Rounds rounds.
.DESCRIPTION
  Each run is a fresh Flood process: it prepares real initiations (valid mac1) from -Peers configured
  peers, warms the responder up with one round of them, then sends for -Seconds with at most -InFlight
  unanswered (64 by default: wireguard-go answers with cookies from 128 queued) and counts the
  responses that come back over 127.0.0.1. CPU is read from /proc: for wireguard-go its whole process
  (it handles handshakes on every core); for ours the device's threads (wg-*), and the one handshake
  thread on its own. Odd rounds run ours first, even rounds wireguard-go first; the summary is the
  median over rounds, and the ratio is ours / wireguard-go of the medians per CPU-second (and of the
  wall rates). Every run is killed after -TimeoutSeconds; wireguard-go's TUN lives in a namespace Flood
  creates and deletes.
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/e2e/handshake-rate.ps1 -Seconds 3 -Rounds 3
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 10)][double]$Seconds = 3,
    [ValidateRange(1, 9)][int]$Rounds = 3,
    [ValidateRange(64, 65536)][int]$Peers = 1024,
    [ValidateRange(1, 1024)][int]$InFlight = 64,
    [ValidateRange(10, 600)][int]$TimeoutSeconds = 120,
    [switch]$NoBuild,
    [string]$OutJson,
    [string]$OutMarkdown,
    [switch]$PassThru
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$inv = [System.Globalization.CultureInfo]::InvariantCulture

$missing = @('wireguard-go', 'wg', 'ip' | Where-Object { -not (Get-Command $_ -ErrorAction Ignore) })
if ($missing.Count) { throw "handshake-rate needs: $($missing -join ', ') (see .ci/run)" }
if ((& id -u) -ne '0') { throw 'handshake-rate needs root (wireguard-go creates a TUN)' }

$proj = Join-Path $repoRoot 'tools/Flood'
if (-not $NoBuild) {
    & dotnet build $proj -c Release -v q -nologo | Out-Null
    if ($LASTEXITCODE -ne 0) { throw 'building tools/Flood failed' }
}
$dll = Join-Path $proj 'bin/Release/net10.0/Flood.dll'
if (-not (Test-Path $dll)) { throw "$dll not found (build tools/Flood -c Release)" }

function Remove-WgGoLeftover([string]$Name) {
    # Flood removes its wireguard-go, TUN namespace and UAPI socket itself, unless it was killed.
    if ((& ip netns list 2>$null) -match "^$Name\b") { & ip netns delete $Name 2>$null }
    Remove-Item -LiteralPath "/var/run/wireguard/$Name.sock" -ErrorAction Ignore
}

function Invoke-Flood([string]$Target) {
    # A name of our own for wireguard-go's interface and namespace, so a killed run can be cleaned up.
    $name = 'whs' + [System.Guid]::NewGuid().ToString('N').Substring(0, 6)
    $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
    foreach ($a in $dll, '--measure', '--target', $Target, '--seconds', $Seconds.ToString($inv), '--peers', "$Peers", '--inflight', "$InFlight", '--name', $name) {
        $psi.ArgumentList.Add($a)
    }
    $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true; $psi.UseShellExecute = $false
    $load = ((Get-Content /proc/loadavg) -split ' ')[0]
    $p = [System.Diagnostics.Process]::Start($psi)
    try {
        $outTask = $p.StandardOutput.ReadToEndAsync(); $errTask = $p.StandardError.ReadToEndAsync()
        if (-not $p.WaitForExit($TimeoutSeconds * 1000)) { $p.Kill($true); throw "Flood --target $Target exceeded $TimeoutSeconds s" }
        $p.WaitForExit()
    }
    finally {
        if (-not $p.HasExited) { $p.Kill($true); $p.WaitForExit(5000) | Out-Null }
        if ($Target -eq 'wggo') { Remove-WgGoLeftover $name }
    }
    $lines = @($outTask.GetAwaiter().GetResult() -split "`n" | Where-Object { $_.Trim() })
    if ($p.ExitCode -ne 0 -or -not $lines.Count -or -not $lines[-1].StartsWith('{')) {
        throw "Flood --target $Target failed ($($p.ExitCode)): $($errTask.GetAwaiter().GetResult()) $($lines -join ' | ')"
    }
    $lines[0..($lines.Count - 2)] | ForEach-Object { Write-Host "    $_" }
    $r = $lines[-1] | ConvertFrom-Json
    if ($r.responses -le 0) { throw "Flood --target ${Target}: no handshake answered" }
    $r | Add-Member -NotePropertyName load1 -NotePropertyValue ([double]::Parse($load, $inv))
    $r
}

function Get-Median([double[]]$v) {
    $s = @($v | Sort-Object)
    if ($s.Count % 2) { $s[[int](($s.Count - 1) / 2)] } else { ($s[$s.Count / 2 - 1] + $s[$s.Count / 2]) / 2 }
}

$runs = [System.Collections.Generic.List[object]]::new()
$started = [DateTime]::UtcNow
for ($round = 1; $round -le $Rounds; $round++) {
    $order = if ($round % 2) { 'ours', 'wggo' } else { 'wggo', 'ours' }
    foreach ($t in $order) {
        Write-Host "round $round, $t"
        $r = Invoke-Flood $t
        $r | Add-Member -NotePropertyName round -NotePropertyValue $round
        $runs.Add($r)
    }
}

$ours = @($runs | Where-Object target -eq 'ours')
$wggo = @($runs | Where-Object target -eq 'wggo')
$summary = [ordered]@{
    date = $started.ToString('yyyy-MM-dd HH:mm', $inv) + '-' + [DateTime]::UtcNow.ToString('HH:mm', $inv) + ' UTC'
    seconds = $Seconds; rounds = $Rounds; peers = $Peers; inFlight = $InFlight
    load1 = @($runs | ForEach-Object load1)
    oursPerCpuSecond = Get-Median ($ours | ForEach-Object perCpuSecond)
    oursPerHandshakeThreadCpuSecond = Get-Median ($ours | ForEach-Object perHandshakeThreadCpuSecond)
    oursPerSecond = Get-Median ($ours | ForEach-Object perSecond)
    oursCookieRepliesPerCpuSecond = Get-Median ($ours | ForEach-Object cookieRepliesPerCpuSecond)
    wggoPerCpuSecond = Get-Median ($wggo | ForEach-Object perCpuSecond)
    wggoPerSecond = Get-Median ($wggo | ForEach-Object perSecond)
    # The host's speed in the same runs: CPU time of one libsodium X25519, and each handshake's cost in those.
    x25519Us = Get-Median ($runs | ForEach-Object x25519Us)
    oursX25519PerHandshake = Get-Median ($ours | ForEach-Object x25519PerHandshake)
    oursX25519PerHandshakeThread = Get-Median ($ours | ForEach-Object x25519PerHandshakeThread)
    wggoX25519PerHandshake = Get-Median ($wggo | ForEach-Object x25519PerHandshake)
    runs = $runs
}
$summary.ratioPerCpuSecond = [math]::Round($summary.oursPerCpuSecond / $summary.wggoPerCpuSecond, 2)
$summary.ratioPerSecond = [math]::Round($summary.oursPerSecond / $summary.wggoPerSecond, 2)

function F0($v) { ([double]$v).ToString('N0', $inv) }
function F2($v) { ([double]$v).ToString('F2', $inv) }
$rows = @(
    '| responder | per CPU-second (median) | rounds | wall rate /s (median) | rounds | lost | cost in X25519 ops (median) |'
    '|---|---|---|---|---|---|---|'
    "| WireGuardGateway, device threads (wg-*) | $(F0 $summary.oursPerCpuSecond) | $(($ours | ForEach-Object { F0 $_.perCpuSecond }) -join ' / ') | $(F0 $summary.oursPerSecond) | $(($ours | ForEach-Object { F0 $_.perSecond }) -join ' / ') | $(($ours | Measure-Object lost -Sum).Sum) | $(F2 $summary.oursX25519PerHandshake) |"
    "| WireGuardGateway, handshake thread alone | $(F0 $summary.oursPerHandshakeThreadCpuSecond) | $(($ours | ForEach-Object { F0 $_.perHandshakeThreadCpuSecond }) -join ' / ') | | | | $(F2 $summary.oursX25519PerHandshakeThread) |"
    "| wireguard-go, whole process | $(F0 $summary.wggoPerCpuSecond) | $(($wggo | ForEach-Object { F0 $_.perCpuSecond }) -join ' / ') | $(F0 $summary.wggoPerSecond) | $(($wggo | ForEach-Object { F0 $_.perSecond }) -join ' / ') | $(($wggo | Measure-Object lost -Sum).Sum) | $(F2 $summary.wggoX25519PerHandshake) |"
    "| **ours / wireguard-go** | **$(F2 $summary.ratioPerCpuSecond)** | | **$(F2 $summary.ratioPerSecond)** | | | |"
)
$md = @(
    "Run $($summary.date): ``bench/e2e/handshake-rate.ps1 -Seconds $Seconds -Rounds $Rounds`` ($Peers peers, $InFlight in flight),"
    "load average (1 min) before each run: $(($summary.load1 | ForEach-Object { $_.ToString('F1', $inv) }) -join ', '). Ours cookie replies (device forced under load):"
    "$(F0 $summary.oursCookieRepliesPerCpuSecond) per CPU-second of the handshake thread (median). One X25519 (libsodium) took"
    "$($summary.x25519Us.ToString('F1', $inv)) us of CPU in these runs (median; ~23 us on a quiet host, TOOLCHAIN.md's 43k/s); the last column is each"
    "handshake's CPU in such operations, which moves less with the host's load than the rates do."
    ''
) + $rows
Write-Host ''
$md | ForEach-Object { Write-Host $_ }
if ($OutJson) { $summary | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $OutJson }
if ($OutMarkdown) { ($md -join "`n") + "`n" | Set-Content -LiteralPath $OutMarkdown -NoNewline }
if ($PassThru) { [pscustomobject]$summary }
