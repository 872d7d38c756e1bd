<#
.SYNOPSIS
  The whole benchmark set (build.ps1 Bench): every figure of docs/performance.md, measured in one run
  against wireguard-go on this machine, written into the document's generated blocks.
.DESCRIPTION
  Parts, each with its own generated block (<!-- NAME:begin ... --> / <!-- NAME:end --> in the doc):
    hub-iperf     iperf3 between two wireguard-go clients through our hub vs a wireguard-go hub (bench/e2e/hub-iperf.ps1)
    hub-latency   ping RTT through the same hubs, median and p99 (bench/e2e/hub-latency.ps1)
    egress-iperf  userspace egress, TUN egress, wireguard-go + kernel forwarding (bench/e2e/egress-iperf.ps1)
    site-to-site  one tunnel between two namespaces, our engine on both ends vs Debian's wireguard-go on both
                  ends, both directions, with the batch sizes reached and the cipher limit (bench/e2e/site-to-site.ps1)
    handshake-rate completed responder handshakes per CPU-second vs wireguard-go (bench/e2e/handshake-rate.ps1)
    flood-client  a wireguard-go client's handshake (mac2 retry) and Get-WgPeer while our gateway is
                  flooded with valid-mac1 initiations (bench/e2e/flood-client.ps1)
    scale         100,000 peers: Add-WgPeer rate, memory per peer, Get-WgPeer, idle CPU; wireguard-go's
                  memory per peer (bench/scale/scale-peers.ps1, bench/scale/wggo-peers.ps1)
    micro         BenchmarkDotNet: AEAD, handshake, BLAKE2s, allowed-IPs, UDP batching, with allocations
    host-api      the gateway host: API requests/s (wrk) for a peer list and for creation, RSS with
                  100,000 peers, SIGTERM to exit (bench/host/host-api.ps1)
    fleet         a fleet on a private PostgreSQL: 100,000 peers, an instance's join time and memory, change
                  propagation p50/p99 under ~1,000 changes/s, DB transactions/s of an idle instance
                  (bench/fleet/fleet-scale.ps1; written into docs/fleet.md)
  A part that fails is reported and the others still run; the exit code is 1 if any failed. Every
  load loop of the parts is bounded in time; traffic stays on loopback and in namespaces they create.
  The whole set takes about 18 minutes on the 2-core CI machine.
.EXAMPLE
  dotnet pwsh -NoProfile -File ./build.ps1 Bench
  dotnet pwsh -NoProfile -File bench/run-bench.ps1 -Only hub-latency,scale -Rounds 3
#>
[CmdletBinding()]
param(
    [int]$Duration = 10,              # seconds per hub iperf3 run
    [int]$Rounds = 3,                 # A/B rounds per comparison (the figure is the median)
    [int]$EgressDuration = 5,         # per egress iperf3 run; it runs 4 tests x 3 gateways per round
    [int]$ScalePeers = 100000,
    [string]$MicroJob = 'short',      # BenchmarkDotNet job: short (3 iterations) or default (claims)
    [string]$MicroFilter = '*',
    [ValidateSet('hub-iperf', 'hub-latency', 'egress-iperf', 'site-to-site', 'handshake-rate', 'flood-client', 'scale', 'micro', 'host-api', 'fleet')]
    [string[]]$Only,                  # run only these parts
    [string[]]$Skip = @(),            # leave these parts out
    [switch]$NoDocUpdate,             # measure and print, leave docs/performance.md as it is
    [string]$Doc = (Join-Path (Resolve-Path (Join-Path $PSScriptRoot '..')).Path 'docs/performance.md'),
    [string]$OutDir = (Join-Path (Resolve-Path (Join-Path $PSScriptRoot '..')).Path 'artifacts/bench')
)
$ErrorActionPreference = 'Stop'
$env:NO_COLOR = '1'
Import-Module (Join-Path $PSScriptRoot 'BenchReport.psm1') -Force
New-Item -ItemType Directory -Force -Path $OutDir | Out-Null
[string[]] $pwshArgs = if (Test-Path (Join-Path $PSHOME 'pwsh')) { @((Join-Path $PSHOME 'pwsh')) } else { @('dotnet', (Join-Path $PSHOME 'pwsh.dll')) }

function Test-Part([string] $Name) { (-not $Only -or $Only -contains $Name) -and $Skip -notcontains $Name }
$failed = [System.Collections.Generic.List[string]]::new()
function Write-Part([string] $Name, [string] $Command, [string] $Body) {
    $md = New-BenchSection -Command $Command -Body $Body
    Set-Content -LiteralPath (Join-Path $OutDir "$Name.md") -Value $md
    if ($NoDocUpdate) { Write-Host $md; return }
    if (Set-BenchDocSection -Doc $Doc -Name $Name -Markdown $md) { Write-Host "$Name`: written into $Doc" }
    else { $failed.Add("$Name (no markers in the doc; results in $OutDir/$Name.md)") }
}
function Invoke-Part([string] $Name, [scriptblock] $Body) {
    if (-not (Test-Part $Name)) { return }
    Write-Host "== bench: $Name ($(Get-BenchMachine))"
    $sw = [Diagnostics.Stopwatch]::StartNew()
    try { & $Body } catch { Write-Warning "$Name failed: $_"; $failed.Add($Name) }
    Write-Host ("== bench: $Name took {0:N0} s" -f $sw.Elapsed.TotalSeconds)
}
function Invoke-ChildPwsh([string[]] $Arguments) {
    & $pwshArgs[0] @($pwshArgs | Select-Object -Skip 1) -NoProfile -NonInteractive @Arguments | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "$($Arguments -join ' ') exited $LASTEXITCODE" }
}

Invoke-Part 'hub-iperf' {
    $json = Join-Path $OutDir 'e2e-hub-iperf.json'
    $summary = & (Join-Path $PSScriptRoot 'e2e/hub-iperf.ps1') -Duration $Duration -Rounds $Rounds -WithPolicy -OutJson $json -PassThru
    $ref = $summary | Where-Object Topology -Like 'hub: wireguard-go*'
    $rows = foreach ($s in $summary) {
        [pscustomobject]@{
            Topology = $s.Topology; 'median Mbit/s' = $s.MedianMbps; rounds = $s.Runs; 'vs direct' = $s.VsDirect
            'throughput vs wireguard-go hub (goal >= 1.5)' = "**$($s.VsWireGuardGoHub)**"
            'hub CPU-s per GB' = $s.HubCpuSecPerGB
            'CPU per GB vs wireguard-go hub (goal <= 0.67)' = if ($s.HubCpuSecPerGB -and $ref.HubCpuSecPerGB) { "**$([math]::Round($s.HubCpuSecPerGB / $ref.HubCpuSecPerGB, 2))**" } else { '' }
            'gen-0 GCs per million packets' = $s.Gen0PerMillionPackets
        }
    }
    Write-Part 'hub-iperf' "bench/e2e/hub-iperf.ps1 -Duration $Duration -Rounds $Rounds -WithPolicy" (ConvertTo-BenchTable $rows @($rows[0].PSObject.Properties.Name))
}

Invoke-Part 'hub-latency' {
    $summary = & (Join-Path $PSScriptRoot 'e2e/hub-latency.ps1') -Rounds $Rounds -OutJson (Join-Path $OutDir 'e2e-hub-latency.json') -PassThru
    $rows = foreach ($s in $summary) {
        [pscustomobject]@{
            Topology = $s.Topology; 'median ms' = $s.MedianMs; 'p99 ms' = $s.P99Ms; 'max ms' = $s.MaxMs; 'loss %' = $s.LossPct
            'median rounds' = $s.RoundsMedian; 'p99 rounds' = $s.RoundsP99
            'median vs wireguard-go hub (goal <= 1)' = "**$($s.MedianVsWgGoHub)**"; 'p99 vs wireguard-go hub (goal <= 1)' = "**$($s.P99VsWgGoHub)**"
        }
    }
    Write-Part 'hub-latency' "bench/e2e/hub-latency.ps1 -Count 200 -Rounds $Rounds" (ConvertTo-BenchTable $rows @($rows[0].PSObject.Properties.Name))
}

Invoke-Part 'egress-iperf' {
    $json = Join-Path $OutDir 'e2e-egress-iperf.json'
    $md = Join-Path $OutDir 'e2e-egress-iperf-tables.md'
    & (Join-Path $PSScriptRoot 'e2e/egress-iperf.ps1') -Duration $EgressDuration -Rounds $Rounds -TunOffloadVariant -OutJson $json -OutMarkdown $md
    if (-not (Test-Path $md)) { throw 'egress-iperf.ps1 wrote no tables' }
    Write-Part 'egress-iperf' "bench/e2e/egress-iperf.ps1 -Duration $EgressDuration -Rounds $Rounds -TunOffloadVariant" ([System.IO.File]::ReadAllText($md))
}

Invoke-Part 'site-to-site' {
    $json = Join-Path $OutDir 'e2e-site-to-site.json'
    $md = Join-Path $OutDir 'e2e-site-to-site-tables.md'
    & (Join-Path $PSScriptRoot 'e2e/site-to-site.ps1') -Duration $Duration -Rounds $Rounds -OutJson $json -OutMarkdown $md
    if (-not (Test-Path $md)) { throw 'site-to-site.ps1 wrote no tables' }
    Write-Part 'site-to-site' "bench/e2e/site-to-site.ps1 -Duration $Duration -Rounds $Rounds" ([System.IO.File]::ReadAllText($md))
}

Invoke-Part 'handshake-rate' {
    $script = Join-Path $PSScriptRoot 'e2e/handshake-rate.ps1'
    if (-not (Test-Path $script)) { throw "$script does not exist" }
    $md = Join-Path $OutDir 'handshake-rate-tables.md'
    & $script -Rounds $Rounds -OutMarkdown $md
    if (-not (Test-Path $md)) { throw 'handshake-rate.ps1 wrote no tables' }
    Write-Part 'handshake-rate' "bench/e2e/handshake-rate.ps1 -Rounds $Rounds" ([System.IO.File]::ReadAllText($md))
}

Invoke-Part 'flood-client' {
    $md = Join-Path $OutDir 'flood-client-tables.md'
    & (Join-Path $PSScriptRoot 'e2e/flood-client.ps1') -Rounds $Rounds -OutMarkdown $md
    if (-not (Test-Path $md)) { throw 'flood-client.ps1 wrote no tables' }
    Write-Part 'flood-client' "bench/e2e/flood-client.ps1 -Rounds $Rounds" ([System.IO.File]::ReadAllText($md))
}

Invoke-Part 'scale' {
    # Each in a fresh process: the figures are that process's memory and CPU.
    $ours = Join-Path $OutDir 'scale-ours.json'; $oursFile = Join-Path $OutDir 'scale-ours-file.json'; $theirs = Join-Path $OutDir 'scale-wggo.json'
    Invoke-ChildPwsh @('-File', (Join-Path $PSScriptRoot 'scale/scale-peers.ps1'), '-Count', "$ScalePeers", '-OutJson', $ours)
    Invoke-ChildPwsh @('-File', (Join-Path $PSScriptRoot 'scale/scale-peers.ps1'), '-Count', "$ScalePeers", '-ConfigPath', '-OutJson', $oursFile)
    # wireguard-go 0.0.20220316 drops the UAPI connection ("Broken pipe") once it holds ~60,000 peers, so
    # its per-peer figures come from 50,000.
    $wgCount = [math]::Min($ScalePeers, 50000)
    Invoke-ChildPwsh @('-File', (Join-Path $PSScriptRoot 'scale/wggo-peers.ps1'), '-Count', "$wgCount", '-OutJson', $theirs)
    $o = Get-Content -Raw $ours | ConvertFrom-Json; $f = Get-Content -Raw $oursFile | ConvertFrom-Json; $w = Get-Content -Raw $theirs | ConvertFrom-Json
    $rows = @(
        [pscustomobject]@{ gateway = 'WireGuardGateway, Add-WgPeer pipeline'; peers = $o.Peers; 'peers/s (goal >= 20,000)' = "**$($o.PeersPerSecond)**"
            'RSS B/peer (goal <= 2,048)' = "**$($o.RssBytesPerPeer)**"; 'RSS B/peer settled' = $o.RssBytesPerPeerSettled; 'heap B/peer' = $o.HeapBytesPerPeer; 'Get-WgPeer s (goal < 1)' = "**$($o.GetWgPeerSeconds)** / $($o.GetWgPeerAgainSeconds)"
            'idle CPU %' = $o.IdleCpuPercent; 'restart from file s' = '' }
        [pscustomobject]@{ gateway = 'WireGuardGateway, with -ConfigPath'; peers = $f.Peers; 'peers/s (goal >= 20,000)' = "**$($f.PeersPerSecond)**"
            'RSS B/peer (goal <= 2,048)' = $f.RssBytesPerPeer; 'RSS B/peer settled' = $f.RssBytesPerPeerSettled; 'heap B/peer' = $f.HeapBytesPerPeer; 'Get-WgPeer s (goal < 1)' = "$($f.GetWgPeerSeconds) / $($f.GetWgPeerAgainSeconds)"
            'idle CPU %' = $f.IdleCpuPercent; 'restart from file s' = $f.RestartFromFileSeconds }
        [pscustomobject]@{ gateway = "$($w.Version), ``wg addconf`` per 10,000"; peers = $w.Peers; 'peers/s (goal >= 20,000)' = $w.PeersPerSecond
            'RSS B/peer (goal <= 2,048)' = $w.RssBytesPerPeer; 'RSS B/peer settled' = ''; 'heap B/peer' = ''; 'Get-WgPeer s (goal < 1)' = ''
            'idle CPU %' = $w.IdleCpuPercent; 'restart from file s' = '' }
    )
    $body = (ConvertTo-BenchTable $rows @($rows[0].PSObject.Properties.Name)) +
        "`n`nRSS per peer, ours / wireguard-go's: **$([math]::Round($o.RssBytesPerPeer / [math]::Max(1, $w.RssBytesPerPeer), 2))**. " +
        "Load average at the end of each: $($o.LoadAverage) / $($f.LoadAverage) / $($w.LoadAverage)."
    if ($wgCount -lt $ScalePeers) { $body += " wireguard-go was given $wgCount peers: the version here fails a UAPI set once it holds ~60,000 (``wg addconf``: Broken pipe)." }
    Write-Part 'scale' "bench/scale/scale-peers.ps1 -Count $ScalePeers [-ConfigPath]; bench/scale/wggo-peers.ps1 -Count $wgCount" $body
}

Invoke-Part 'host-api' {
    $json = Join-Path $OutDir 'host-api.json'
    Invoke-ChildPwsh @('-File', (Join-Path $PSScriptRoot 'host/host-api.ps1'), '-MemoryPeers', "$ScalePeers", '-OutJson', $json)
    $r = Get-Content -Raw $json | ConvertFrom-Json
    $rows = @(
        [pscustomobject]@{ measurement = "GET /v1/servers/{s}/peers ($($r.ListPeers) peers), HTTPS + token"; result = "**$($r.ListRps) req/s**"; detail = "avg latency $($r.ListLatency), $($r.ListNon2xx) non-2xx" }
        [pscustomobject]@{ measurement = 'POST /v1/servers/{s}/peers (allocation, config file rewritten per peer)'; result = "**$($r.CreateRps) req/s**"; detail = "avg latency $($r.CreateLatency), $($r.CreateNon2xx) non-2xx, $($r.PeersAfterCreate) peers at the end" }
        [pscustomobject]@{ measurement = "host RSS with $($r.MemoryPeers) peers (batch API, config file in sync)"; result = "**$($r.RssMiB) MiB**"; detail = "$($r.RssBaselineMiB) MiB with none: $($r.RssBytesPerPeer) B/peer; added in $($r.BatchAddSeconds) s" }
        [pscustomobject]@{ measurement = "SIGTERM to exit with $($r.MemoryPeers) peers"; result = "**$($r.SigtermToExitSeconds) s**"; detail = "exit code $($r.ExitCode); $($r.PeersInFileAfterExit) peers in the file afterwards" }
    )
    Write-Part 'host-api' "bench/host/host-api.ps1 -MemoryPeers $ScalePeers (wrk -t$($r.Threads) -c$($r.Connections) -d$($r.Seconds)s)" (ConvertTo-BenchTable $rows @('measurement', 'result', 'detail'))
}

Invoke-Part 'micro' {
    $proj = Join-Path $PSScriptRoot 'WgEngine.Bench'
    $art = Join-Path $OutDir 'micro'
    if (Test-Path $art) { Remove-Item $art -Recurse -Force }
    # Quoted: PowerShell globs a bare '*' argument of a native command against the current directory.
    & dotnet run -c Release --project $proj -- --filter "$MicroFilter" --job $MicroJob --memory --exporters github --artifacts $art | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "BenchmarkDotNet exited $LASTEXITCODE" }
    $reports = @(Get-ChildItem (Join-Path $art 'results') -Filter '*-report-github.md' -ErrorAction Ignore | Sort-Object Name)
    if (-not $reports) { throw "no BenchmarkDotNet reports in $art/results" }
    # Each report: its title and table, without the environment block (the section head says the machine).
    $body = foreach ($r in $reports) {
        $lines = [System.IO.File]::ReadAllLines($r.FullName)
        $table = $lines | Where-Object { $_ -like '|*' }
        "#### $($r.BaseName -replace '-report-github$' -replace '^WgEngine\.Bench\.', '')`n`n$($table -join "`n")`n"
    }
    Write-Part 'micro' "dotnet run -c Release --project bench/WgEngine.Bench -- --filter '$MicroFilter' --job $MicroJob --memory" ($body -join "`n")
}

Invoke-Part 'fleet' {
    $json = Join-Path $OutDir 'fleet.json'
    Invoke-ChildPwsh @('-File', (Join-Path $PSScriptRoot 'fleet/fleet-scale.ps1'), '-Peers', "$ScalePeers", '-OutJson', $json)
    $r = Get-Content -Raw $json | ConvertFrom-Json
    $rows = @(
        [pscustomobject]@{ measurement = "instance join and ready ($($r.Peers) peers in the registry)"; result = "**$($r.JoinAndReadySeconds) s**"; detail = "read every peer in one snapshot, all in the engine" }
        [pscustomobject]@{ measurement = 'memory of the instance'; result = "**$($r.InstanceRssMiB) MiB RSS**"; detail = "$($r.InstanceRssBytesPerPeer) B/peer RSS, $($r.InstanceHeapBytesPerPeer) B/peer managed heap" }
        [pscustomobject]@{ measurement = "change propagation, $($r.Changes) renames at a target of $($r.TargetChangesPerSecond)/s"; result = "**p50 $($r.PropagationP50Ms) ms, p99 $($r.PropagationP99Ms) ms**"; detail = "max $($r.PropagationMaxMs) ms; achieved $($r.AchievedChangesPerSecond) changes/s (8 writers; one write p50 $($r.WriteP50Ms) ms, p99 $($r.WriteP99Ms) ms); $($r.ChangesApplied) applied; load average $($r.LoadAverage) at the end" }
        [pscustomobject]@{ measurement = 'registry writes through the API, one writer'; result = "**$($r.ApiAddsPerSecond) adds/s**"; detail = 'the allocation read, then one batch: constraint-checked insert, version bump, notify (one transaction each)' }
        [pscustomobject]@{ measurement = "database load of one idle instance ($($r.IdleSeconds) s window)"; result = "**$($r.IdleTransactionsPerSecond) transactions/s**"; detail = "pg_stat_database xact_commit delta minus a baseline of $($r.BaselineTransactionsPerSecond)/s without the instance" }
        [pscustomobject]@{ measurement = 'database load of the instance while the changes came in'; result = "**$($r.InstanceTransactionsPerSecondUnderWrites) transactions/s**"; detail = "its syncs (at most one per $($r.MinSyncMs) ms, MinSyncInterval), polls and reports, at $($r.AchievedChangesPerSecond) changes/s" }
    )
    $md = New-BenchSection -Command "bench/fleet/fleet-scale.ps1 -Peers $ScalePeers" -Body (ConvertTo-BenchTable $rows @('measurement', 'result', 'detail'))
    Set-Content -LiteralPath (Join-Path $OutDir 'fleet.md') -Value $md
    $fleetDoc = Join-Path (Split-Path $Doc) 'fleet.md'
    if ($NoDocUpdate) { Write-Host $md }
    elseif (Set-BenchDocSection -Doc $fleetDoc -Name 'fleet' -Markdown $md) { Write-Host "fleet: written into $fleetDoc" }
    else { $failed.Add("fleet (no markers in $fleetDoc)") }
}

if ($failed.Count) { Write-Warning "bench parts that failed: $($failed -join ', ')"; exit 1 }
Write-Host 'bench: all parts done'
