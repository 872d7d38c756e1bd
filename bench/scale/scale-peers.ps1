#!/usr/bin/env pwsh
<#
.SYNOPSIS
  Scale benchmark (issue 7 item 5): pipes N generated peers into Add-WgPeer on a fresh gateway and
  reports peers/s, managed heap and RSS per peer, the time of `Get-WgPeer | Measure-Object`, the idle
  CPU of the gateway holding them, and with -ConfigPath the time to start again from the file.
.DESCRIPTION
  Public keys are random 32-byte strings (any 32 bytes are a valid public key for the cmdlet), so key
  generation is not in the figure. The input objects are built before the clock starts; what is timed
  is the pipeline `$objects | Add-WgPeer` (PowerShell's parameter binding included).
  The machine is shared: wall-clock figures move with its load (reported), AddCpuSeconds (this process's
  CPU time during the add, all threads) much less.
  Memory: GC.GetTotalMemory(true) and VmRSS before and after, minus the input objects (they are built
  first and kept alive through both readings, so they cancel out).
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/scale/scale-peers.ps1 -Count 100000
  dotnet pwsh -NoProfile -File bench/scale/scale-peers.ps1 -Count 100000 -ConfigPath
#>
param(
    [int] $Count = 100000,
    [switch] $ConfigPath,
    # First pipe 5,000 peers into a throwaway server, so that the timed run measures jitted (tier-1)
    # code rather than a fresh process's first use. Without it: what a fresh pwsh sees.
    [switch] $Warmup,
    [string] $OutJson,   # also write the result here (run-bench.ps1 runs this in a fresh process)
    [switch] $PassThru   # output the result object (for run-bench.ps1) instead of a list on the host
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force

function Get-RssBytes { [long]((Get-Content /proc/self/status | Select-String '^VmRSS:\s+(\d+)').Matches[0].Groups[1].Value) * 1024 }

$rng = [System.Security.Cryptography.RandomNumberGenerator]
$bytes = [byte[]]::new(32)
$objects = [System.Collections.Generic.List[object]]::new($Count)
for ($i = 0; $i -lt $Count; $i++) {
    $rng::Fill($bytes)
    $objects.Add([pscustomobject]@{ PublicKey = [Convert]::ToBase64String($bytes) })
}

if ($Warmup) {
    $w = Start-WgServer -ListenPort 0 -Address 10.200.0.1/16 -Name "warm$PID"
    $objects.GetRange(0, [math]::Min(5000, $Count)) | Add-WgPeer -Server $w.Name | Out-Null
    Get-WgPeer -Server $w.Name | Out-Null
    $w | Stop-WgServer
}

$tmp = $null
$startArgs = @{ ListenPort = 0; Address = '10.64.0.1/14'; Name = "scale$PID" }
if ($ConfigPath) {
    $tmpDir = Join-Path ([IO.Path]::GetTempPath()) "wg-scale-$PID"
    $null = New-Item -ItemType Directory $tmpDir
    $tmp = Join-Path $tmpDir 'wg.conf'
    $startArgs.ConfigPath = $tmp
    # Counts the file's commits: each is a temp file renamed over it (AtomicFile).
    $watcher = [IO.FileSystemWatcher]::new($tmpDir, 'wg.conf')
    $watcher.NotifyFilter = [IO.NotifyFilters]::FileName
    $null = Register-ObjectEvent $watcher Renamed -SourceIdentifier "wgscale$PID"
    $watcher.EnableRaisingEvents = $true
}
$srv = Start-WgServer @startArgs
try {
    [GC]::Collect(); [GC]::WaitForPendingFinalizers()
    $heap0 = [GC]::GetTotalMemory($true); $rss0 = Get-RssBytes

    $gc0 = 0..2 | ForEach-Object { [GC]::CollectionCount($_) }; $pause0 = [GC]::GetTotalPauseDuration()
    $alloc0 = [GC]::GetTotalAllocatedBytes($true)
    $me = [Diagnostics.Process]::GetCurrentProcess(); $cpu0 = $me.TotalProcessorTime
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $objects | Add-WgPeer -Server $srv.Name | Out-Null
    $sw.Stop()
    $addSec = $sw.Elapsed.TotalSeconds
    $allocated = [GC]::GetTotalAllocatedBytes($true) - $alloc0
    $me.Refresh(); $cpuSec = ($me.TotalProcessorTime - $cpu0).TotalSeconds   # all threads (GC, engine) of this process
    $commits = $null
    if ($ConfigPath) {
        Start-Sleep -Milliseconds 500   # let the watcher deliver the last rename
        $commits = @(Get-Event -SourceIdentifier "wgscale$PID" -ErrorAction SilentlyContinue).Count
        Unregister-Event "wgscale$PID"; $watcher.Dispose()
    }
    $gcs = (0..2 | ForEach-Object { [GC]::CollectionCount($_) - $gc0[$_] }) -join ' / '
    $pause = ([GC]::GetTotalPauseDuration() - $pause0).TotalSeconds

    $heap1 = [GC]::GetTotalMemory($true); $rss1 = Get-RssBytes

    $sw.Restart()
    $n = (Get-WgPeer -Server $srv.Name | Measure-Object).Count
    $sw.Stop()
    $getSec = $sw.Elapsed.TotalSeconds
    $sw.Restart()
    $null = (Get-WgPeer -Server $srv.Name | Measure-Object).Count
    $getSec2 = $sw.Elapsed.TotalSeconds

    # Idle cost of the peers: this process's CPU with nothing to do but the engine's timer sweep (the
    # first seconds after the add still carry background JIT and GC work: skip them).
    Start-Sleep -Seconds 4
    $me.Refresh(); $idle0 = $me.TotalProcessorTime
    Start-Sleep -Seconds 4
    $me.Refresh(); $idlePct = ($me.TotalProcessorTime - $idle0).TotalSeconds / 4 * 100
    # Resident memory once idle: the listings' garbage collected, and the free memory the GC kept from the
    # bulk add returned to the OS (what a gateway holding these peers settles at).
    [GC]::Collect(2, [GCCollectionMode]::Aggressive, $true, $true); [GC]::WaitForPendingFinalizers()
    $rssSettled = Get-RssBytes

    $restartSec = $null
    if ($ConfigPath) {
        # Restart from the file: Start-WgServer loads all peers back.
        $srv | Stop-WgServer
        $sw.Restart()
        $srv = Start-WgServer -ConfigPath $tmp -Name $startArgs.Name
        $restartSec = [math]::Round($sw.Elapsed.TotalSeconds, 2)
        if ($srv.PeerCount -ne $Count) { throw "Restart loaded $($srv.PeerCount) peers, expected $Count." }
    }

    $load = (Get-Content /proc/loadavg).Split(' ')[0..2] -join ' '
    $result = [pscustomobject]@{
        Peers            = $n
        ConfigPath       = [bool]$ConfigPath
        AddSeconds       = [math]::Round($addSec, 2)
        PeersPerSecond   = [math]::Round($Count / $addSec)
        AddCpuSeconds    = [math]::Round($cpuSec, 2)
        AllocatedPerPeer = [math]::Round($allocated / $Count)
        GcGen012DuringAdd = $gcs
        GcPauseSeconds   = [math]::Round($pause, 2)
        HeapBytesPerPeer = [math]::Round(($heap1 - $heap0) / $Count)
        RssBytesPerPeer  = [math]::Round(($rss1 - $rss0) / $Count)
        RssBytesPerPeerSettled = [math]::Round(($rssSettled - $rss0) / $Count)
        GetWgPeerSeconds = [math]::Round($getSec, 2)
        GetWgPeerAgainSeconds = [math]::Round($getSec2, 2)
        IdleCpuPercent   = [math]::Round($idlePct, 1)
        FileCommitsDuringAdd = $commits
        RestartFromFileSeconds = $restartSec
        Warmup           = [bool]$Warmup
        ConfigFileMB     = if ($tmp) { [math]::Round((Get-Item $tmp).Length / 1MB, 1) } else { $null }
        LoadAverage      = $load
    }
    if ($PassThru) { $result } else { $result | Format-List }
    if ($OutJson) { $result | ConvertTo-Json | Set-Content -LiteralPath $OutJson }
    if ($n -ne $Count) { throw "Get-WgPeer returned $n peers, expected $Count." }
}
finally {
    $srv | Stop-WgServer
    if ($tmp) { Remove-Item -Recurse $tmpDir -ErrorAction SilentlyContinue }
}
