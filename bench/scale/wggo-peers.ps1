#!/usr/bin/env pwsh
<#
.SYNOPSIS
  wireguard-go's side of the scale benchmark (issue 7 item 5): loads N peers into a real wireguard-go
  device and reports its resident memory per peer and idle CPU, for comparison with scale-peers.ps1.
.DESCRIPTION
  The device runs as the interop tests run it (tests/Interop/WgInterop.psm1: the process in the root
  namespace, its TUN moved into a namespace of this run, removed afterwards, also on failure). The peers
  (random 32-byte public keys, one /32 each from 10.64.0.0/14, no endpoint: idle) go in as one
  `wg addconf` per 10,000 of them (each one UAPI set). Memory is VmRSS of the wireguard-go process
  before and after, divided by N; idle CPU is its utime+stime over 4 s after 4 s of settling.
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/scale/wggo-peers.ps1 -Count 100000
#>
param(
    [ValidateRange(1, 1000000)][int] $Count = 100000,
    [string] $OutJson,   # also write the result here (run-bench.ps1 runs this in a fresh process)
    [switch] $PassThru
)
$ErrorActionPreference = 'Stop'
$repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
Import-Module (Join-Path $repoRoot 'tests/Interop/WgInterop.psm1') -Force

function Get-ProcRssBytes([int] $ProcessId) {
    [long]((Get-Content "/proc/$ProcessId/status" | Select-String '^VmRSS:\s+(\d+)').Matches[0].Groups[1].Value) * 1024
}
# utime + stime of all threads, in seconds (/proc/PID/stat fields 14 and 15, in clock ticks of 100 Hz).
function Get-ProcCpuSeconds([int] $ProcessId) {
    $stat = Get-Content -Raw "/proc/$ProcessId/stat"
    $f = $stat.Substring($stat.LastIndexOf(')') + 2).Split(' ')
    ([long]$f[11] + [long]$f[12]) / 100.0
}

$net = New-WgTestNetwork
try {
    $key = New-WgGoKeyPair
    $dev = New-WgGoDevice -Network $net -Role s -PrivateKey $key.PrivateKey -Address "$($net.V4Prefix).1/24"

    # The peers: the same shape scale-peers.ps1 gives our gateway, in files of 10,000 (wireguard-go
    # 0.0.20220316 drops the UAPI connection, "Broken pipe", on one set of 100,000 peers).
    $chunk = 10000
    $files = [System.Collections.Generic.List[string]]::new()
    $bytes = [byte[]]::new(32)
    for ($start = 0; $start -lt $Count; $start += $chunk) {
        $sb = [System.Text.StringBuilder]::new($chunk * 110)
        for ($i = $start; $i -lt [math]::Min($Count, $start + $chunk); $i++) {
            [System.Security.Cryptography.RandomNumberGenerator]::Fill($bytes)
            $n = $i + 2   # 10.64.0.2 upwards, inside 10.64.0.0/14
            [void]$sb.Append("[Peer]`nPublicKey = ").Append([Convert]::ToBase64String($bytes)).
                Append("`nAllowedIPs = 10.").Append(64 + ($n -shr 16)).Append('.').Append(($n -shr 8) -band 255).Append('.').Append($n -band 255).Append("/32`n")
        }
        $f = Join-Path $net.TempDir "peers-$start.conf"
        [System.IO.File]::WriteAllText($f, $sb.ToString())
        $files.Add($f)
    }

    Start-Sleep -Seconds 1
    $rss0 = Get-ProcRssBytes $dev.Pid
    $sw = [Diagnostics.Stopwatch]::StartNew()
    foreach ($f in $files) { Invoke-WgNative wg 'addconf', $dev.Name, $f | Out-Null }
    $sw.Stop()
    [string[]] $lines = Invoke-WgNative wg 'show', $dev.Name, 'peers'
    $peers = @($lines | Where-Object { $_ }).Count
    if ($peers -ne $Count) { throw "wireguard-go holds $peers peers, expected $Count" }
    Start-Sleep -Seconds 4
    $rss1 = Get-ProcRssBytes $dev.Pid
    $cpu0 = Get-ProcCpuSeconds $dev.Pid
    Start-Sleep -Seconds 4
    $idle = (Get-ProcCpuSeconds $dev.Pid) - $cpu0
    $threads = (Get-ChildItem "/proc/$($dev.Pid)/task").Count

    $result = [pscustomobject]@{
        Peers           = $peers
        AddSeconds      = [math]::Round($sw.Elapsed.TotalSeconds, 2)
        PeersPerSecond  = [math]::Round($Count / $sw.Elapsed.TotalSeconds)
        RssBytesPerPeer = [math]::Round(($rss1 - $rss0) / $Count)
        RssMiB          = [math]::Round($rss1 / 1MB, 1)
        IdleCpuPercent  = [math]::Round($idle / 4 * 100, 1)
        Threads         = $threads
        Version         = (& wireguard-go --version 2>$null | Select-Object -First 1)
        LoadAverage     = (Get-Content /proc/loadavg).Split(' ')[0..2] -join ' '
    }
    if ($PassThru) { $result } else { $result | Format-List }
    if ($OutJson) { $result | ConvertTo-Json | Set-Content -LiteralPath $OutJson }
}
finally {
    Remove-WgTestNetwork $net
}
