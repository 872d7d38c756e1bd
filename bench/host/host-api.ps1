<#
.SYNOPSIS
  The gateway host's figures (docs/performance.md, block host-api): API requests per second on loopback
  for a peer list and for peer creation (wrk over HTTPS with a token), the host's memory with 100,000
  peers, and the time from SIGTERM to exit with them (the config flush included).
.DESCRIPTION
  A benchmark, not a test: it reports what it measures. Every load is bounded (wrk -d), traffic stays on
  127.0.0.1, and everything lives in a temp folder with unique names. Needs the built host (./build.ps1
  Build) and wrk (apt-get install wrk).
#>
[CmdletBinding()]
param(
    [int]$Seconds = 10,          # wrk duration per measurement
    [int]$Connections = 16,
    [int]$Threads = 2,
    [int]$ListPeers = 100,       # peers on the gateway for the list measurement
    [int]$MemoryPeers = 100000,
    [string]$OutJson
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../../tests/Host/HostSupport.psm1') -Force
if ($r = Get-HostSkipReason) { throw $r }
if (-not (Get-Command wrk -ErrorAction SilentlyContinue)) { throw 'wrk is missing (apt-get install wrk)' }

function Start-BenchHost([string] $Dir, [string] $Name, [string] $Base, $Cert, [string] $Tokens) {
    $h = Start-WgTestHost -Dir $Dir -Arguments @((Join-Path $Dir "$Name.conf"), '--Gateways:0:ListenPort=0', "--Gateways:0:UapiPath=",
        '--Gateways:0:Address:0=10.96.0.1/12', '--Gateways:0:Egress=None', "--Api:UnixSocket=$(Join-Path $Dir 'run/api.sock')",
        "--Api:Https:Url=$Base", "--Api:Https:CertificatePath=$($Cert.CertPath)", "--Api:Https:KeyPath=$($Cert.KeyPath)",
        "--Api:Https:TokenStore=$Tokens", '--Logging:LogLevel:Default=Warning')
    if (-not (Wait-WgTestHostReady $h (Join-Path $Dir 'run/api.sock'))) { throw "host did not start: $(Get-WgTestHostLog $h)" }
    $h
}
function Add-Peers([string] $Socket, [string] $Name, [int] $Count) {
    $batch = 5000
    for ($done = 0; $done -lt $Count; $done += $batch) {
        $n = [math]::Min($batch, $Count - $done)
        $peers = foreach ($i in 1..$n) { @{ publicKey = (New-TestPublicKey) } }
        $r = Invoke-HostApi -Socket $Socket -Method POST -Path "/v1/servers/$Name/peers/batch" -Body (@{ peers = @($peers) } | ConvertTo-Json -Depth 4 -Compress)
        if ($r.Status -ne 200) { throw "batch add failed: $($r.Status) $($r.Body.Substring(0, [math]::Min(300, $r.Body.Length)))" }
    }
}
function Invoke-Wrk([string[]] $Arguments) {
    $out = & wrk @Arguments 2>&1
    $text = ($out | ForEach-Object { "$_" }) -join "`n"
    if ($text -notmatch 'Requests/sec:\s+([\d.]+)') { throw "wrk gave no rate:`n$text" }
    $rps = [double]$Matches[1]
    $lat = if ($text -match '(?m)^\s+Latency\s+(\S+)') { $Matches[1] } else { '' }
    $bad = if ($text -match 'Non-2xx or 3xx responses:\s+(\d+)') { [int]$Matches[1] } else { 0 }
    $total = if ($text -match '(\d+) requests in') { [int]$Matches[1] } else { 0 }
    [pscustomobject]@{ RequestsPerSecond = [math]::Round($rps); AvgLatency = $lat; Requests = $total; Non2xx = $bad }
}
function Get-RssBytes([int] $ProcessId) {
    $line = Get-Content "/proc/$ProcessId/status" | Where-Object { $_ -like 'VmRSS:*' }
    [long](($line -split '\s+')[1]) * 1024
}

$dir = New-HostTestDir 'bench'
$hosts = @()
try {
    $cert = New-TestCertificate $dir
    $tokens = Join-Path $dir 'tokens.json'
    $token = (Invoke-HostTokenCommand @('create', '--store', $tokens, '--name', 'bench', '--scope', 'read-write')).Out[0]
    $name = New-HostGatewayName
    $base = "https://127.0.0.1:$(Get-FreeTcpPort)"
    $h = Start-BenchHost $dir $name $base $cert $tokens
    $hosts += $h
    $socket = Join-Path $dir 'run/api.sock'
    Add-Peers $socket $name $ListPeers
    $auth = "Authorization: Bearer $token"
    $list = Invoke-Wrk @("-t$Threads", "-c$Connections", "-d$($Seconds)s", '-H', $auth, "$base/v1/servers/$name/peers")
    $create = Invoke-Wrk @("-t$Threads", "-c$Connections", "-d$($Seconds)s", '-H', $auth, '-s', (Join-Path $PSScriptRoot 'post-peer.lua'), "$base/v1/servers/$name/peers")
    $afterCreate = (Invoke-HostApi -Socket $socket -Path "/v1/servers/$name").Json.peerCount
    Stop-WgTestHost $h 'TERM' | Out-Null

    # Memory and SIGTERM with 100,000 peers, in a fresh host (its config file kept in sync throughout).
    $dir2 = Join-Path $dir 'mem'; New-Item -ItemType Directory -Path $dir2 | Out-Null
    $name2 = New-HostGatewayName
    $h2 = Start-BenchHost $dir2 $name2 "https://127.0.0.1:$(Get-FreeTcpPort)" $cert $tokens
    $hosts += $h2
    $socket2 = Join-Path $dir2 'run/api.sock'
    $rss0 = Get-RssBytes $h2.Pid
    $sw = [Diagnostics.Stopwatch]::StartNew()
    Add-Peers $socket2 $name2 $MemoryPeers
    $addSeconds = $sw.Elapsed.TotalSeconds
    $count = (Invoke-HostApi -Socket $socket2 -Path "/v1/servers/$name2").Json.peerCount
    $rss1 = Get-RssBytes $h2.Pid
    $termSeconds = Stop-WgTestHost $h2 'TERM' -Seconds 60
    $exit = $h2.Process.ExitCode
    $fileOk = (Select-String -Path (Join-Path $dir2 "$name2.conf") -Pattern '^\[Peer\]' -AllMatches).Matches.Count

    $result = [pscustomobject]@{
        ListPeers = $ListPeers; ListRps = $list.RequestsPerSecond; ListLatency = $list.AvgLatency; ListNon2xx = $list.Non2xx
        CreateRps = $create.RequestsPerSecond; CreateLatency = $create.AvgLatency; CreateNon2xx = $create.Non2xx; PeersAfterCreate = $afterCreate
        MemoryPeers = $count; RssBaselineMiB = [math]::Round($rss0 / 1MB, 1); RssMiB = [math]::Round($rss1 / 1MB, 1)
        RssBytesPerPeer = [math]::Round(($rss1 - $rss0) / [math]::Max(1, $count)); BatchAddSeconds = [math]::Round($addSeconds, 1)
        SigtermToExitSeconds = [math]::Round($termSeconds, 2); ExitCode = $exit; PeersInFileAfterExit = $fileOk
        Connections = $Connections; Threads = $Threads; Seconds = $Seconds
    }
    if ($OutJson) { $result | ConvertTo-Json | Set-Content $OutJson }
    $result
}
finally {
    foreach ($x in $hosts) { Remove-WgTestHost $x }
    Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
}
