<#
.SYNOPSIS
  Egress throughput and CPU cost: iperf3 (TCP) from a wireguard-go client to a server namespace that
  only the gateway can reach, through (a) our gateway with -Egress Userspace, (b) our gateway with
  -Egress Tun (kernel forwarding in the gateway namespace), (c) wireguard-go as the gateway (its TUN
  plus kernel forwarding). Also the userspace egress's resident memory per idle TCP connection.
.DESCRIPTION
  Topology: tests/Interop/EgressTopology.psm1 (client / gw / srv namespaces, same addresses for all
  three gateways). Only one gateway can own the gateway namespace's tunnel address and port at a time,
  so each round starts every gateway in turn (order rotated per round: A/B alternation), runs the
  iperf3 tests against it and stops it. Each iperf3 run is bounded (killed after Duration + 20 s).
  Per run: throughput received by iperf3, the gateway process's CPU seconds (/proc/<pid>/stat utime +
  stime) and the whole machine's busy CPU seconds (/proc/stat minus idle and iowait; softirq also on
  its own), both per GB received. Kernel forwarding (b, c) runs in softirq context and is not charged
  to the gateway process: the machine figure is the one that compares all three fairly (it also
  includes iperf3 and the wireguard-go client, the same for all three, and anything else the host runs).
  Medians over the rounds; ratios of medians. Everything is removed afterwards, also on failure.
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/e2e/egress-iperf.ps1 -Duration 5 -Rounds 3
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 60)][int]$Duration = 5,
    [ValidateRange(1, 9)][int]$Rounds = 3,
    [int[]]$Streams = @(1, 4),              # iperf3 -P values; each is run in both directions
    [int[]]$IdleConnections = @(100, 200, 300, 400, 500),  # memory test steps; the default per-peer TCP limit is 512
    [switch]$SkipMemory,
    [switch]$NoSpinVariant,                 # adds 'userspace-nospin': userspace with DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0
    [switch]$TunOffloadVariant,             # adds 'tun-nooffload': the TUN egress with WIREGUARDGATEWAY_TUN_OFFLOAD=0 (plain IFF_NO_PI)
    [string]$ProfileDir,                    # with perf installed: CPU profiles of the userspace gateway (upload, download)
    [switch]$SkipThroughput,
    [string]$Gen0Size = '0x100000',          # DOTNET_GCgen0size of the memory test's gateway (hex bytes)
    [string]$OutJson,
    [string]$OutMarkdown,                   # the results tables, for run-bench.ps1 to put into docs/performance.md
    [switch]$PassThru
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
Import-Module (Join-Path $repoRoot 'tests/Interop/EgressTopology.psm1') -Force
Import-Module (Join-Path $PSScriptRoot 'BenchMeasure.psm1') -Force

$prereq = Test-EgressTopologyPrerequisite
$missing = @($prereq.Missing) + @(if (-not (Get-Command iperf3 -ErrorAction Ignore)) { 'iperf3' })
if ($missing.Count) { throw "egress-iperf needs: $($missing -join ', ') (see .ci/run)" }
if (-not (Test-Path (Join-Path $repoRoot 'module/bin')) -and -not $env:WGI_GATEWAY_MODULE) { throw 'WireGuardGateway is not built: run ./build.ps1 Build first' }

$IperfPort = 5201
$HoldPort = 5202
$Gateways = @('userspace', 'tun', 'wireguard-go')
if ($NoSpinVariant) { $Gateways += 'userspace-nospin' }
if ($TunOffloadVariant) { $Gateways += 'tun-nooffload' }

function Get-RssKiB([int]$ProcessId) {
    $line = [System.IO.File]::ReadAllLines("/proc/$ProcessId/status") | Where-Object { $_ -like 'VmRSS:*' }
    [long](($line -split '\s+')[1])
}

function Get-ThreadCount([int]$ProcessId) {
    $line = [System.IO.File]::ReadAllLines("/proc/$ProcessId/status") | Where-Object { $_ -like 'Threads:*' }
    [int](($line -split '\s+')[1])
}

function Wait-TcpPath([int]$Port, [int]$TimeoutSeconds = 15) {
    # The path is up when a TCP connection from the client reaches srv through the gateway (ICMP may
    # be unavailable to the userspace egress: ping sockets depend on net.ipv4.ping_group_range).
    $code = "import socket,sys`ntry:`n socket.create_connection(('$($topo.SrvAddress)',$Port),2).close()`nexcept OSError: sys.exit(1)"
    Wait-WgCondition -TimeoutSeconds $TimeoutSeconds -IntervalMilliseconds 200 -Condition {
        $null = Invoke-InEgressNamespace $topo client python3 '-c', $code -AllowFailure
        $LASTEXITCODE -eq 0
    }
}

function Start-WgGoGateway {
    # wireguard-go in gw, run inside the namespace so its UDP socket and TUN live there; the same
    # tunnel address and port our gateway uses; gw already forwards (New-EgressTopology).
    $ifname = "wi$($topo.RunId)w"
    $sock = "/var/run/wireguard/$ifname.sock"
    $e = Start-NamespaceProcess -Topology $topo -Namespace $topo.Gw -FilePath 'wireguard-go' -ArgumentList $ifname `
        -Environment @{ WG_PROCESS_FOREGROUND = '1'; LOG_LEVEL = 'error' } -UapiSocket $sock
    if (-not (Wait-WgCondition { (Test-Path -LiteralPath $sock) -or $e.Process.HasExited } -TimeoutSeconds 10)) { throw "wireguard-go gateway: no UAPI socket" }
    if ($e.Process.HasExited) { throw "wireguard-go gateway exited: $($e.Stderr.Result)" }
    $k = New-WgGoKeyPair
    Invoke-WgNative wg 'set', $ifname, 'private-key', '/dev/stdin', 'listen-port', '51820', 'peer', $topo.ClientKey.PublicKey,
        'allowed-ips', "$($topo.ClientTunnel)/32" -InputText $k.PrivateKey | Out-Null
    Invoke-WgNative ip '-n', $topo.Gw, 'addr', 'add', $topo.GatewayTunnel, 'dev', $ifname | Out-Null
    Invoke-WgNative ip '-n', $topo.Gw, 'link', 'set', $ifname, 'up' | Out-Null
    [pscustomobject]@{ Kind = 'wireguard-go'; PublicKey = $k.PublicKey; ListenPort = 51820; Process = $e.Process; IfName = $ifname }
}

function Start-BenchGateway([string]$Kind) {
    if ($Kind -eq 'wireguard-go') { $g = Start-WgGoGateway }
    else {
        # The variant: thread-pool workers sleep at once instead of spinning (sched_yield) for work.
        if ($Kind -eq 'userspace-nospin') { $env:DOTNET_ThreadPool_UnfairSemaphoreSpinLimit = '0' }
        # The other: the TUN without offloads, one packet per read and write (what the offloads save).
        if ($Kind -eq 'tun-nooffload') { $env:WIREGUARDGATEWAY_TUN_OFFLOAD = '0' }
        # The server lives at a private address, which the userspace egress refuses by default: allow exactly its
        # subnet (the TUN egress leaves filtering to the host's firewall and takes no -EgressAllow).
        $extra = if ($Kind -like 'tun*') { @{} } else { @{ EgressAllow = $topo.SrvNet } }
        try { $gw = Start-EgressGateway -Topology $topo -Egress $(if ($Kind -like 'tun*') { 'Tun' } else { 'Userspace' }) -ServerParameters $extra }
        finally { Remove-Item Env:DOTNET_ThreadPool_UnfairSemaphoreSpinLimit, Env:WIREGUARDGATEWAY_TUN_OFFLOAD -ErrorAction Ignore }
        if (-not $gw.Ready) { throw "our gateway ($Kind) failed: $($gw.ErrorId) $($gw.ErrorMessage)" }
        $g = [pscustomobject]@{ Kind = $Kind; PublicKey = $gw.PublicKey; ListenPort = $gw.ListenPort; Process = $gw.Process; IfName = $gw.Name }
    }
    # `ip netns exec` execs the command: the pid is the gateway's own (dotnet or wireguard-go).
    $comm = [System.IO.File]::ReadAllText("/proc/$($g.Process.Id)/comm").Trim()
    if ($comm -notin 'dotnet', 'wireguard-go') { throw "unexpected gateway process '$comm' (pid $($g.Process.Id))" }
    Add-WgGoPeer -Device $topo.ClientDevice -PublicKey $g.PublicKey -AllowedIPs $topo.TunnelNet, $topo.SrvNet `
        -Endpoint "$($topo.GwVethA):$($g.ListenPort)" -PersistentKeepalive 25
    if (-not (Wait-TcpPath $HoldPort)) { throw "no TCP path from client to srv through the $Kind gateway" }
    $g
}

function Stop-BenchGateway($g) {
    Invoke-WgNative wg 'set', $topo.ClientDevice.Name, 'peer', $g.PublicKey, 'remove' -AllowFailure | Out-Null
    if ($g.Kind -eq 'wireguard-go') {
        & kill -TERM $g.Process.Id 2>$null
        if (-not $g.Process.WaitForExit(5000)) { $g.Process.Kill(); [void]$g.Process.WaitForExit(3000) }
    } else { Stop-EgressGateway -Topology $topo }
    # The next gateway needs the tunnel address and UDP port free.
    $gone = Wait-WgCondition -TimeoutSeconds 10 -Condition {
        -not ((Invoke-InEgressNamespace $topo gw ip '-o', 'link' -AllowFailure) -match [regex]::Escape($g.IfName))
    }
    if (-not $gone) { throw "the $($g.Kind) gateway's interface $($g.IfName) is still there" }
}

function Invoke-Iperf([int]$P, [switch]$Reverse, $Gateway) {
    Invoke-IperfRun -ServerNamespace $topo.Srv -ClientNamespace $topo.Client -ServerAddress $topo.SrvAddress -Port $IperfPort `
        -ProcessIds $Gateway.Process.Id -TempDir $topo.Network.TempDir -Duration $Duration -Streams $P -Reverse:$Reverse
}

function Measure-IdleConnectionMemory {
    # Opens idle TCP connections from the client through a fresh userspace gateway to srv's holder, in
    # steps, and reads the gateway's VmRSS once gw holds them all (ss). Two passes: on the fresh gateway
    # (includes one-time costs: JIT, thread pool, heap regions), then after closing them all again (the
    # steady cost of holding a connection).
    # A small gen-0 budget for this gateway only, so that RSS follows retained memory rather than the
    # garbage of connection set-up waiting for the next collection (the default budget is many MB).
    $env:DOTNET_GCgen0size = $Gen0Size
    try { $g = Start-BenchGateway 'userspace' } finally { Remove-Item Env:DOTNET_GCgen0size }
    $opener = $null
    try {
        $count = { @((Invoke-InEgressNamespace $topo gw ss '-Htn', 'state', 'established', "dst $($topo.SrvAddress):$HoldPort" -AllowFailure) |
                    Where-Object { $_ }).Count }
        $code = @"
import socket,sys
conns=[]
for line in sys.stdin:
    n=int(line)
    while len(conns)>n: conns.pop().close()
    while len(conns)<n: conns.append(socket.create_connection(('$($topo.SrvAddress)',$HoldPort),10))
    print('OPEN',len(conns),flush=True)
"@
        $opener = Start-NamespaceProcess -Topology $topo -Namespace $topo.Client -FilePath python3 -ArgumentList '-c', $code
        $setTo = {
            param([int]$n)
            $opener.Process.StandardInput.WriteLine("$n"); $opener.Process.StandardInput.Flush()
            $t = $opener.Process.StandardOutput.ReadLineAsync()
            if (-not $t.Wait(60000) -or $t.Result -ne "OPEN $n") { throw "the opener did not get to $n connections: $($t.Result) $($opener.Stderr.Result)" }
            if (-not (Wait-WgCondition { (& $count) -eq $n } -TimeoutSeconds 30)) { throw "gw does not hold $n connections ($(& $count) established to srv)" }
            Start-Sleep -Milliseconds 500   # a settle time before reading RSS (the condition was met above)
        }
        foreach ($pass in 'fresh gateway', 'after warm-up') {
            & $setTo 0
            $base = Get-RssKiB $g.Process.Id
            $baseThreads = Get-ThreadCount $g.Process.Id
            $rows = @(foreach ($n in ($IdleConnections | Sort-Object)) {
                & $setTo $n
                $rss = Get-RssKiB $g.Process.Id
                [pscustomobject]@{ Pass = $pass; Connections = $n; RssKiB = $rss; BaselineKiB = $base; KiBPerConnection = [math]::Round(($rss - $base) / $n, 1)
                    Threads = Get-ThreadCount $g.Process.Id }
            })
            $rows
            # Least-squares slope over the baseline (0 connections) and every step: single RSS readings
            # jump with the GC's heap growth, the fit over all steps is the pass's per-connection figure.
            $pts = @([pscustomobject]@{ X = 0.0; Y = [double]$base }) + @($rows | ForEach-Object { [pscustomobject]@{ X = [double]$_.Connections; Y = [double]$_.RssKiB } })
            $mx = ($pts.X | Measure-Object -Average).Average; $my = ($pts.Y | Measure-Object -Average).Average
            $sxy = 0.0; $sxx = 0.0
            foreach ($q in $pts) { $sxy += ($q.X - $mx) * ($q.Y - $my); $sxx += ($q.X - $mx) * ($q.X - $mx) }
            [pscustomobject]@{ Pass = $pass; Connections = "fit 0..$($rows[-1].Connections)"; RssKiB = $null; BaselineKiB = $base
                KiBPerConnection = [math]::Round($sxy / $sxx, 1); Threads = $baseThreads }
        }
    } finally {
        if ($opener -and -not $opener.Process.HasExited) { $opener.Process.Kill(); [void]$opener.Process.WaitForExit(3000) }
        Stop-BenchGateway $g
    }
}

function Invoke-GatewayProfile {
    # perf record of a fresh userspace gateway (JIT symbols from the runtime's perf map) during one
    # 1-stream upload and one download; writes perf report summaries into $ProfileDir.
    New-Item -ItemType Directory -Force -Path $ProfileDir | Out-Null
    # W^X off: with it the JIT's code is double-mapped and perf cannot match it to the perf map.
    $env:DOTNET_PerfMapEnabled = '1'; $env:DOTNET_EnableWriteXorExecute = '0'
    try { $g = Start-BenchGateway 'userspace' } finally { Remove-Item Env:DOTNET_PerfMapEnabled, Env:DOTNET_EnableWriteXorExecute }
    # Warm up first (tiered JIT), so the profile shows the steady state.
    [void](Invoke-Iperf -P 1 -Gateway $g)
    try {
        foreach ($rev in $false, $true) {
            $tag = if ($rev) { 'download' } else { 'upload' }
            $data = Join-Path $topo.Network.TempDir "perf-$tag.data"
            $perf = Start-Process -FilePath perf -ArgumentList 'record', '-F', '499', '-g', '-p', "$($g.Process.Id)", '-o', $data, '--', 'sleep', "$Duration" `
                -PassThru -RedirectStandardError (Join-Path $topo.Network.TempDir "perf-$tag.err")
            $m = Invoke-Iperf -P 1 -Reverse:$rev -Gateway $g
            if (-not $perf.WaitForExit(($Duration + 20) * 1000)) { $perf.Kill(); throw 'perf record did not end' }
            $head = "userspace gateway, TCP -P 1 $tag, $($m.Mbps) Mbit/s while profiled (perf record -F 499 -g, $Duration s)"
            Write-PerfSummary -Data $data -OutFile (Join-Path $ProfileDir "perf-userspace-$tag.txt") -Head $head
            Write-Host "profile: $ProfileDir/perf-userspace-$tag.txt"
        }
    } finally { Stop-BenchGateway $g }
}

$topo = $null
$results = [System.Collections.Generic.List[object]]::new()
$memory = @()
$tests = foreach ($p in $Streams) { foreach ($r in $false, $true) { [pscustomobject]@{ P = $p; Reverse = $r; Name = "TCP -P $p $(if ($r) { 'download (-R)' } else { 'upload' })" } } }
$started = Get-Date
try {
    $topo = New-EgressTopology
    # A holder in srv: accepts and keeps connections open, closes those the client closes.
    $hold = @"
import selectors,socket,resource
resource.setrlimit(resource.RLIMIT_NOFILE,resource.getrlimit(resource.RLIMIT_NOFILE)[1:]*2)
sel=selectors.DefaultSelector();s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('$($topo.SrvAddress)',$HoldPort));s.listen(4096);sel.register(s,selectors.EVENT_READ)
while True:
    for k,_ in sel.select():
        if k.fileobj is s: c,_=s.accept();sel.register(c,selectors.EVENT_READ)
        elif not k.fileobj.recv(65536): sel.unregister(k.fileobj);k.fileobj.close()
"@
    Start-NamespaceProcess -Topology $topo -Namespace $topo.Srv -FilePath python3 -ArgumentList '-c', $hold | Out-Null
    if (-not (Wait-WgCondition { (Invoke-InEgressNamespace $topo srv ss '-Hltn' -AllowFailure) -match ":$HoldPort" } -TimeoutSeconds 10)) { throw 'holder did not start in srv' }

    for ($r = 0; $r -lt $(if ($SkipThroughput) { 0 } else { $Rounds }); $r++) {
        $order = for ($i = 0; $i -lt $Gateways.Count; $i++) { $Gateways[($i + $r) % $Gateways.Count] }
        foreach ($kind in $order) {
            $g = Start-BenchGateway $kind
            try {
                for ($i = 0; $i -lt $tests.Count; $i++) {
                    $t = $tests[($i + $r) % $tests.Count]
                    $m = Invoke-Iperf -P $t.P -Reverse:$t.Reverse -Gateway $g
                    $m | Add-Member -NotePropertyName Round -NotePropertyValue ($r + 1)
                    $m | Add-Member -NotePropertyName Gateway -NotePropertyValue $kind
                    $m | Add-Member -NotePropertyName Test -NotePropertyValue $t.Name
                    $results.Add($m)
                    Write-Host ("round {0}: {1,-16} {2,-22} {3,8:N1} Mbit/s  gw {4,6:N2} CPU-s/GB  machine {5,6:N2} CPU-s/GB" -f ($r + 1), $kind, $t.Name, $m.Mbps, $m.ProcCpuSecPerGB, $m.MachineCpuSecPerGB)
                }
            } finally { Stop-BenchGateway $g }
        }
    }
    if (-not $SkipMemory) { $memory = @(Measure-IdleConnectionMemory) }
    if ($ProfileDir) { Invoke-GatewayProfile }
} finally {
    Remove-EgressTopology $topo
}
$elapsed = (Get-Date) - $started

$measured = if ($results.Count) { $tests } else { @() }
$summary = foreach ($t in $measured) {
    foreach ($kind in $Gateways) {
        $rows = @($results | Where-Object { $_.Gateway -eq $kind -and $_.Test -eq $t.Name })
        [pscustomobject]@{
            Test = $t.Name; Gateway = $kind; MedianMbps = Get-Median $rows.Mbps
            Runs = ($rows.Mbps | ForEach-Object { '{0:N0}' -f $_ }) -join ' / '
            ProcCpuSecPerGB = Get-Median $rows.ProcCpuSecPerGB; MachineCpuSecPerGB = Get-Median $rows.MachineCpuSecPerGB
            SoftirqSecPerGB = Get-Median $rows.SoftirqSecPerGB
        }
    }
}
function Get-Ratio($a, $b) { if ($a -and $b) { [math]::Round($a / $b, 2) } else { $null } }
$ratios = foreach ($t in $measured) {
    # A gateway kind left out of this run (the variants) reads as an empty row, so its ratios are null under StrictMode.
    $absent = [pscustomobject]@{ MedianMbps = $null; ProcCpuSecPerGB = $null; MachineCpuSecPerGB = $null }
    $s = @{}; foreach ($k in $Gateways + 'tun-nooffload') { $s[$k] = $absent }
    foreach ($x in @($summary | Where-Object Test -EQ $t.Name)) { $s[$x.Gateway] = $x }
    [pscustomobject]@{
        Test = $t.Name
        UserspaceVsTun = Get-Ratio $s['userspace'].MedianMbps $s['tun'].MedianMbps
        TunVsWireGuardGo = Get-Ratio $s['tun'].MedianMbps $s['wireguard-go'].MedianMbps
        UserspaceVsWireGuardGo = Get-Ratio $s['userspace'].MedianMbps $s['wireguard-go'].MedianMbps
        MachineCpuUserspaceVsTun = Get-Ratio $s['userspace'].MachineCpuSecPerGB $s['tun'].MachineCpuSecPerGB
        MachineCpuTunVsWireGuardGo = Get-Ratio $s['tun'].MachineCpuSecPerGB $s['wireguard-go'].MachineCpuSecPerGB
        TunOffloadOnVsOff = Get-Ratio $s['tun'].MedianMbps $s['tun-nooffload'].MedianMbps
        ProcCpuTunOffloadOnVsOff = Get-Ratio $s['tun'].ProcCpuSecPerGB $s['tun-nooffload'].ProcCpuSecPerGB
    }
}
$summary | Format-Table -AutoSize | Out-String -Width 220 | Write-Host
$ratios | Format-Table -AutoSize | Out-String -Width 220 | Write-Host
if ($memory) { $memory | Format-Table -AutoSize | Out-String -Width 200 | Write-Host }
Write-Host ("egress-iperf: {0:N0} s" -f $elapsed.TotalSeconds)

if ($OutJson) {
    [pscustomobject]@{ Duration = $Duration; Rounds = $Rounds; Summary = $summary; Ratios = $ratios; Memory = $memory; Runs = $results } |
        ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $OutJson
}
if ($OutMarkdown) {
    $md = [System.Text.StringBuilder]::new()
    # run-bench.ps1 puts the date, command and machine above these tables.
    [void]$md.AppendLine("Duration of this run: $([math]::Round($elapsed.TotalMinutes, 1)) min.")
    [void]$md.AppendLine()
    [void]$md.AppendLine('| test | gateway | median Mbit/s | rounds | gateway process CPU-s/GB | machine CPU-s/GB | of which softirq |')
    [void]$md.AppendLine('|---|---|---|---|---|---|---|')
    foreach ($x in $summary) {
        [void]$md.AppendLine("| $($x.Test) | $($x.Gateway) | $($x.MedianMbps) | $($x.Runs) | $($x.ProcCpuSecPerGB) | $($x.MachineCpuSecPerGB) | $($x.SoftirqSecPerGB) |")
    }
    [void]$md.AppendLine()
    $offHead = if ($TunOffloadVariant) { ' TUN offloads on / off | gateway CPU per GB: offloads on / off |' } else { '' }
    [void]$md.AppendLine('| test | userspace / TUN (goal >= 0.8) | TUN / wireguard-go (goal > 1) | userspace / wireguard-go | machine CPU per GB: userspace / TUN | machine CPU per GB: TUN / wireguard-go |' + $offHead)
    [void]$md.AppendLine('|---|---|---|---|---|---|' + $(if ($TunOffloadVariant) { '---|---|' } else { '' }))
    foreach ($x in $ratios) {
        $off = if ($TunOffloadVariant) { " $($x.TunOffloadOnVsOff) | $($x.ProcCpuTunOffloadOnVsOff) |" } else { '' }
        [void]$md.AppendLine("| $($x.Test) | **$($x.UserspaceVsTun)** | **$($x.TunVsWireGuardGo)** | $($x.UserspaceVsWireGuardGo) | $($x.MachineCpuUserspaceVsTun) | $($x.MachineCpuTunVsWireGuardGo) |" + $off)
    }
    if ($memory) {
        [void]$md.AppendLine()
        [void]$md.AppendLine('| pass | idle TCP connections through the userspace egress | gateway RSS KiB | baseline KiB | KiB per connection | gateway threads (fit row: at 0) |')
        [void]$md.AppendLine('|---|---|---|---|---|---|')
        foreach ($x in $memory) {
            $v = if ("$($x.Connections)" -like 'fit*') { "**$($x.KiBPerConnection)**" } else { "$($x.KiBPerConnection)" }
            [void]$md.AppendLine("| $($x.Pass) | $($x.Connections) | $($x.RssKiB) | $($x.BaselineKiB) | $v | $($x.Threads) |")
        }
    }
    Set-Content -LiteralPath $OutMarkdown -Value $md.ToString().TrimEnd()
}
if ($PassThru) { $summary; $ratios }
