<#
.SYNOPSIS
  How long a real wireguard-go client waits for its handshake while our gateway is flooded with
  valid-mac1 initiations, and how fast the cmdlets answer meanwhile: the durations that
  tests/Interop/Flood.Tests.ps1 reports but does not assert (it asserts only what the protocol makes
  significant: the mac2 retry is answered before the client's next retransmission).
.DESCRIPTION
  Runs -Rounds rounds of tests/Interop/FloodRound.psm1's Invoke-WgFloodRound (a gateway on
  ListenPort 0, a wireguard-go client in a namespace made for the round, tools/Flood for -Seconds
  from 64 ports on one core, the client relayed on loopback; everything removed after each round).
  Per round: the time from the client's first mac2-carrying initiation to the gateway's response,
  the client's retransmissions before it, the slowest Get-WgPeer during the flood, and the cookie
  reply rate. Prints a Markdown table (-OutMarkdown writes it to a file; -PassThru returns the rounds).
  Needs root, wireguard-go, wg and ip, and a built module (./build.ps1 Build).
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/e2e/flood-client.ps1 -Rounds 3
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 9)][int]$Rounds = 3,
    [ValidateRange(6, 10)][int]$Seconds = 10,
    [string]$OutMarkdown,
    [switch]$PassThru
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$inv = [System.Globalization.CultureInfo]::InvariantCulture

Import-Module (Join-Path $repoRoot 'tests/Interop/FloodRound.psm1') -Force
Import-Module (Join-Path $PSScriptRoot '../BenchReport.psm1') -Force
$prereq = Test-WgInteropPrerequisite
if (-not $prereq.Ok) { throw "flood-client needs: $($prereq.Missing -join ', ') (see .ci/run)" }
Import-WgGatewayModule
$floodDll = Initialize-WgFloodTool

function Get-Median([double[]]$v) {
    $s = @($v | Sort-Object)
    if ($s.Count % 2) { $s[[int](($s.Count - 1) / 2)] } else { ($s[$s.Count / 2 - 1] + $s[$s.Count / 2]) / 2 }
}

$rows = [System.Collections.Generic.List[object]]::new()
$started = [DateTime]::UtcNow
for ($i = 1; $i -le $Rounds; $i++) {
    $load = ((Get-Content /proc/loadavg) -split ' ')[0]
    Write-Host "round $i (load average $load)"
    $round = Invoke-WgFloodRound -FloodDll $floodDll -Seconds $Seconds
    Format-WgFloodRound $round | ForEach-Object { Write-Host "    $_" }
    $relay = $round.Flood.relay
    $answered = $relay.responses -gt 0 -and $relay.firstMac2AtMs -ge 0
    $cookies = $round.After.CookieRepliesSent - $round.Before.CookieRepliesSent
    $rows.Add([pscustomobject]@{
            round                        = $i
            'load 1 min'                 = [double]::Parse($load, $inv)
            'first mac2 initiation at ms' = [double]$relay.firstMac2AtMs
            'mac2 retry answered after ms' = $answered ? [double]($relay.firstResponseAtMs - $relay.firstMac2AtMs) : 'not answered'
            'retransmissions before it'  = [int]$relay.initiationsAfterMac2BeforeResponse
            'slowest Get-WgPeer ms'      = [math]::Round($round.GetWgPeerSlowestSeconds * 1000, 1)
            'Get-WgPeer calls'           = $round.GetWgPeerCalls
            'cookie replies /s'          = [math]::Round($cookies / $round.Flood.seconds)
        })
}

$answeredAfter = @($rows | Where-Object { $_.'mac2 retry answered after ms' -is [double] } | ForEach-Object { $_.'mac2 retry answered after ms' })
$table = ConvertTo-BenchTable $rows @($rows[0].PSObject.Properties.Name)
$md = @(
    "Run $($started.ToString('yyyy-MM-dd HH:mm', $inv))-$([DateTime]::UtcNow.ToString('HH:mm', $inv)) UTC: ``bench/e2e/flood-client.ps1 -Rounds $Rounds -Seconds $Seconds``."
    "The mac2 retry was answered after $(if ($answeredAfter.Count) { (Get-Median $answeredAfter).ToString('0.#', $inv) + ' ms (median of ' + $answeredAfter.Count + ')' } else { 'never' });"
    "the protocol's bound is the client's Rekey-Timeout (5,000 ms), the only duration the test asserts."
    ''
    $table
) -join "`n"
Write-Host ''
Write-Host $md
if ($OutMarkdown) { Set-Content -LiteralPath $OutMarkdown -Value $md }
if ($PassThru) { $rows }
