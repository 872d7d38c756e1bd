<#
.SYNOPSIS
  Site-to-site throughput and CPU cost (issue 15): one WireGuard tunnel between two network namespaces, both
  ends of one implementation, iperf3 (TCP, one stream) through it in both directions. Our engine on both
  ends (Start-WgServer -Egress Tun, each the other's peer with -Endpoint) against Debian's wireguard-go on
  both ends, on the same bed, in alternated rounds; plus the cipher's own limit measured in the same run.
.DESCRIPTION
  Topology (names and ranges unique per run, everything removed afterwards, also on failure):
    a  --veth 172.31.X.1/30 -- 172.31.X.2/30--  b
    tunnel 10.N.0.1/24 (a)  <-->  10.N.0.2/24 (b); iperf3 -s in b on b's tunnel address, the client in a.
  Upload is a -> b (a encrypts what its TUN gives it, b decrypts and writes its TUN), download (-R) the
  reverse. Only one implementation holds the tunnel at a time; the order alternates per round. Each iperf3
  run is bounded (killed after Duration + 20 s).
  Per run: throughput received; CPU seconds of BOTH endpoint processes (/proc/<pid>/stat utime + stime),
  per GB received; the whole machine's busy CPU per GB (softirq work is not charged to a process, so the
  machine figure is the fair total; both implementations run the same iperf3). For our engine also the
  batch sizes reached (issue 15 item 2): datagrams per UDP send call and per receive call, the share of
  received datagrams that came coalesced by UDP GRO, the TUN's super-packet reads and coalesced writes,
  from the gateway's Metrics before and after the run.
  Medians over the rounds; ratios of medians, ours / Debian's wireguard-go.
  The cipher limit: bench/WgEngine.Bench --cipher-limit 1420 (the engine's transport AEAD on one core).
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/e2e/site-to-site.ps1 -Duration 10 -Rounds 3
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 60)][int]$Duration = 10,
    [ValidateRange(1, 9)][int]$Rounds = 3,
    # 'ours-serial-seal': ours with every batch sealed and every packet opened on one thread (WIREGUARDGATEWAY_SEAL_THREADS=0), what the crypto helpers add
    [ValidateSet('ours', 'wireguard-go', 'ours-serial-seal')][string[]]$Kinds = @('ours', 'wireguard-go'),
    [string]$ProfileDir,                    # with perf installed: CPU profiles of our two ends (upload, download), after the rounds
    [string]$OutJson,
    [string]$OutMarkdown,                   # the result tables, for run-bench.ps1 to put into docs/performance.md
    [switch]$PassThru
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
Import-Module (Join-Path $repoRoot 'tests/Interop/EgressTopology.psm1') -Force
Import-Module (Join-Path $PSScriptRoot 'BenchMeasure.psm1') -Force

$missing = @(foreach ($c in 'ip', 'wg', 'wireguard-go', 'iperf3') { if (-not (Get-Command $c -ErrorAction Ignore)) { $c } })
if ($missing.Count) { throw "site-to-site needs: $($missing -join ', ') (see .ci/run)" }
if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) { throw 'WireGuardGateway is not built: run ./build.ps1 Build first' }

$WgPort = 51820
$IperfPort = 5201

function New-SiteBed {
    # Two namespaces joined by a veth pair made inside them; nothing touches the root namespace.
    $net = New-WgTestNetwork
    $bed = [pscustomobject]@{
        Network = $net; Processes = [System.Collections.Generic.List[object]]::new(); Gateway = $null
        A = $null; B = $null; VethA = $null; VethB = $null
        TunnelA = "$($net.V4Prefix).1"; TunnelB = "$($net.V4Prefix).2"
    }
    try {
        $bed.A = New-WgTestNamespace -Network $net -Role 'a'
        $bed.B = New-WgTestNamespace -Network $net -Role 'b'
        $x = Get-Random -Maximum 64
        $bed.VethA = "172.31.$x.1"; $bed.VethB = "172.31.$x.2"
        Invoke-WgNative ip '-n', $bed.A, 'link', 'add', "va$($net.RunId)", 'type', 'veth', 'peer', 'name', "vb$($net.RunId)", 'netns', $bed.B | Out-Null
        foreach ($l in @(@($bed.A, "va$($net.RunId)", $bed.VethA), @($bed.B, "vb$($net.RunId)", $bed.VethB))) {
            Invoke-WgNative ip '-n', $l[0], 'addr', 'add', "$($l[2])/30", 'dev', $l[1] | Out-Null
            Invoke-WgNative ip '-n', $l[0], 'link', 'set', $l[1], 'up' | Out-Null
        }
        $bed
    } catch { Remove-EgressTopology $bed; throw }
}

function Start-OurEnd($Bed, [string]$Side) {
    # Our gateway in the side's namespace (a child pwsh, tests/Interop/EgressTopology.psm1), TUN egress, no peer
    # yet. A per-side view of the bed gives it its own names (TUN and UAPI socket) and process list.
    $view = [pscustomobject]@{
        Network = $Bed.Network; RunId = "$($Bed.Network.RunId)$Side"; Processes = $Bed.Processes; Gateway = $null
        Gw = $Bed.$Side; GatewayTunnel = "$($Bed."Tunnel$Side")/24"; ClientKey = [pscustomobject]@{ PublicKey = '' }; ClientTunnel = ''
    }
    $gw = Start-EgressGateway -Topology $view -Egress Tun
    if (-not $gw.Ready) { throw "our gateway in $Side failed: $($gw.ErrorId) $($gw.ErrorMessage)" }
    [pscustomobject]@{ Side = $Side; PublicKey = $gw.PublicKey; Process = $gw.Process; View = $view }
}

function Start-WgGoEnd($Bed, [string]$Side) {
    $ifname = "wg$($Bed.Network.RunId)$Side"
    $sock = "/var/run/wireguard/$ifname.sock"
    $e = Start-NamespaceProcess -Topology $Bed -Namespace $Bed.$Side -FilePath 'wireguard-go' -ArgumentList $ifname `
        -Environment @{ WG_PROCESS_FOREGROUND = '1'; LOG_LEVEL = 'error' } -UapiSocket $sock
    if (-not (Wait-WgCondition { (Test-Path -LiteralPath $sock) -or $e.Process.HasExited } -TimeoutSeconds 10)) { throw "wireguard-go in $Side`: no UAPI socket" }
    if ($e.Process.HasExited) { throw "wireguard-go in $Side exited: $($e.Stderr.Result)" }
    $k = New-WgGoKeyPair
    Invoke-WgNative wg 'set', $ifname, 'private-key', '/dev/stdin', 'listen-port', "$WgPort" -InputText $k.PrivateKey | Out-Null
    Invoke-WgNative ip '-n', $Bed.$Side, 'addr', 'add', "$($Bed."Tunnel$Side")/24", 'dev', $ifname | Out-Null
    Invoke-WgNative ip '-n', $Bed.$Side, 'link', 'set', $ifname, 'up' | Out-Null
    [pscustomobject]@{ Side = $Side; PublicKey = $k.PublicKey; Process = $e.Process; IfName = $ifname }
}

function Connect-Ends($Bed, [string]$Kind, $Ends) {
    # Each end gets the other as its peer: its tunnel address, at its veth address and port.
    foreach ($pair in @(@('A', 'B'), @('B', 'A'))) {
        $me = $Ends[$pair[0]]; $other = $Ends[$pair[1]]
        $allowed = "$($Bed."Tunnel$($pair[1])")/32"; $endpoint = "$($Bed."Veth$($pair[1])"):$WgPort"
        if ($Kind -like 'ours*') {
            Invoke-EgressGatewayCommand -Topology $me.View -Command 'Add-WgPeer' -Parameters @{
                PublicKey = $other.PublicKey; AllowedIPs = $allowed; Endpoint = $endpoint }
        } else {
            Invoke-WgNative wg 'set', $me.IfName, 'peer', $other.PublicKey, 'allowed-ips', $allowed, 'endpoint', $endpoint | Out-Null
        }
    }
    # The path is up when a ping from a reaches b's tunnel address (the first one starts the handshake).
    $up = Wait-WgCondition -TimeoutSeconds 20 -IntervalMilliseconds 300 -Condition {
        $null = Invoke-InNamespace $Bed.A ping '-c', '1', '-W', '1', $Bed.TunnelB -AllowFailure
        $LASTEXITCODE -eq 0
    }
    if (-not $up) { throw "no path from a to b through the $Kind tunnel" }
}

function Start-Ends($Bed, [string]$Kind) {
    $ends = @{}
    if ($Kind -eq 'ours-serial-seal') { $env:WIREGUARDGATEWAY_SEAL_THREADS = '0' }
    try { foreach ($side in 'A', 'B') { $ends[$side] = if ($Kind -like 'ours*') { Start-OurEnd $Bed $side } else { Start-WgGoEnd $Bed $side } } }
    finally { Remove-Item Env:WIREGUARDGATEWAY_SEAL_THREADS -ErrorAction Ignore }
    foreach ($e in $ends.Values) {
        # `ip netns exec` execs the command: the pid is the endpoint's own (dotnet or wireguard-go).
        $comm = [System.IO.File]::ReadAllText("/proc/$($e.Process.Id)/comm").Trim()
        if ($comm -notin 'dotnet', 'wireguard-go') { throw "unexpected endpoint process '$comm' (pid $($e.Process.Id))" }
    }
    Connect-Ends $Bed $Kind $ends
    $ends
}

function Stop-Ends($Bed, [string]$Kind, $Ends) {
    foreach ($e in $Ends.Values) {
        if ($Kind -like 'ours*') { Stop-EgressGateway -Topology $e.View; continue }
        & kill -TERM $e.Process.Id 2>$null
        if (-not $e.Process.WaitForExit(5000)) { $e.Process.Kill(); [void]$e.Process.WaitForExit(3000) }
    }
    # The next implementation needs the tunnel addresses and UDP ports free.
    foreach ($side in 'A', 'B') {
        $gone = Wait-WgCondition -TimeoutSeconds 10 -Condition {
            -not ((Invoke-InNamespace $Bed.$side ip '-o', 'addr', 'show' -AllowFailure) -match [regex]::Escape(" $($Bed."Tunnel$side")/"))
        }
        if (-not $gone) { throw "the $Kind tunnel address is still held in $side" }
    }
}

function Get-EndMetrics($Ends) {
    # Our engine's counters on both ends (ServerMetrics as hashtables), keyed by side.
    $m = @{}
    foreach ($side in 'A', 'B') { $m[$side] = Get-EgressGatewayStat -Topology $Ends[$side].View -Property Metrics }
    $m
}

function Get-BatchFigures($Before, $After, [switch]$Reverse) {
    # The sender encrypts TUN reads into UDP sends; the receiver decrypts UDP receives into TUN writes.
    $tx, $rx = if ($Reverse) { 'B', 'A' } else { 'A', 'B' }
    $d = { param($side, $name, $group) $a = $After[$side]; $b = $Before[$side]
        if ($group) { [double]$a[$group][$name] - [double]$b[$group][$name] } else { [double]$a[$name] - [double]$b[$name] } }
    $per = { param($n, $calls) if ($calls -gt 0) { [math]::Round($n / $calls, 1) } else { $null } }
    $gsoReads = & $d $tx 'GsoReads' 'Tun'
    [pscustomobject]@{
        SendBatch = & $per (& $d $tx 'SentInBatches') (& $d $tx 'SendBatches')
        ParallelSealPercent = & $per (100 * (& $d $tx 'ParallelSealBatches')) (& $d $tx 'SendBatches')
        ParallelOpenPercent = & $per (100 * (& $d $rx 'ParallelOpenBatches')) (& $d $rx 'ReceiveBatches')
        ReceiveBatch = & $per (& $d $rx 'ReceivedInBatches') (& $d $rx 'ReceiveBatches')
        # Of the datagrams received, the share that arrived coalesced by UDP GRO (several in one receive).
        ReceiveCoalescedPercent = & $per (100 * (& $d $rx 'ReceivedCoalesced')) (& $d $rx 'ReceivedInBatches')
        TunPacketsPerCoalescedWrite = & $per (& $d $rx 'CoalescedPackets' 'Tun') (& $d $rx 'CoalescedWrites' 'Tun')
        InlinePercent = & $per (100 * (& $d $rx 'InlineReceiveBatches')) (& $d $rx 'ReceiveBatches')
        TunSegmentsPerSuperRead = & $per (& $d $tx 'FromHostPackets' 'Tun') $gsoReads
    }
}

function Invoke-Iperf($Bed, $Ends, [switch]$Reverse) {
    $m = Invoke-IperfRun -ServerNamespace $Bed.B -ClientNamespace $Bed.A -ServerAddress $Bed.TunnelB -Port $IperfPort `
        -ProcessIds @($Ends.Values | ForEach-Object { $_.Process.Id }) -TempDir $Bed.Network.TempDir -Duration $Duration -Reverse:$Reverse
    # Here the process figure is both endpoints together.
    $m | Add-Member -NotePropertyName EndsCpuSecPerGB -NotePropertyValue $m.ProcCpuSecPerGB -PassThru
}

function Invoke-EndsProfile($Bed) {
    # perf record of fresh ends of ours (JIT symbols from the runtime's perf map) during one upload and one
    # download, after a warm-up run (tiered JIT); summaries into $ProfileDir.
    New-Item -ItemType Directory -Force -Path $ProfileDir | Out-Null
    # W^X off: with it the JIT's code is double-mapped and perf cannot match it to the perf map.
    $env:DOTNET_PerfMapEnabled = '1'; $env:DOTNET_EnableWriteXorExecute = '0'
    try { $ends = Start-Ends $Bed 'ours' } finally { Remove-Item Env:DOTNET_PerfMapEnabled, Env:DOTNET_EnableWriteXorExecute }
    try {
        [void](Invoke-Iperf $Bed $ends)
        foreach ($t in $tests) {
            $tag = if ($t.Reverse) { 'download' } else { 'upload' }
            $data = Join-Path $Bed.Network.TempDir "perf-$tag.data"
            $pids = ($ends.Values | ForEach-Object { $_.Process.Id }) -join ','
            $perf = Start-Process -FilePath perf -ArgumentList 'record', '-F', '499', '-g', '-p', $pids, '-o', $data, '--', 'sleep', "$Duration" `
                -PassThru -RedirectStandardError (Join-Path $Bed.Network.TempDir "perf-$tag.err")
            $m = Invoke-Iperf $Bed $ends -Reverse:$t.Reverse
            if (-not $perf.WaitForExit(($Duration + 20) * 1000)) { $perf.Kill(); throw 'perf record did not end' }
            $head = "both ends of ours, TCP -P 1 $($t.Name), $($m.Mbps) Mbit/s while profiled (perf record -F 499 -g, $Duration s)"
            Write-PerfSummary -Data $data -OutFile (Join-Path $ProfileDir "perf-site-to-site-$tag.txt") -Head $head
            Write-Host "profile: $ProfileDir/perf-site-to-site-$tag.txt"
        }
    } finally { Stop-Ends $Bed 'ours' $ends }
}

function Get-CipherLimit {
    $bench = Join-Path $repoRoot 'bench/WgEngine.Bench'
    & dotnet build -c Release -v q --nologo $bench | Out-Null
    if ($LASTEXITCODE -ne 0) { throw 'bench/WgEngine.Bench did not build' }
    $out = & dotnet run -c Release --no-build --project $bench -- --cipher-limit 1420
    if ($LASTEXITCODE -ne 0) { throw "--cipher-limit failed: $out" }
    $out | Select-Object -Last 1 | ConvertFrom-Json
}

$bed = $null
$results = [System.Collections.Generic.List[object]]::new()
$tests = @([pscustomobject]@{ Name = 'upload (a to b)'; Reverse = $false }, [pscustomobject]@{ Name = 'download (b to a)'; Reverse = $true })
$started = Get-Date
$cipher = Get-CipherLimit
try {
    $bed = New-SiteBed
    for ($r = 0; $r -lt $Rounds; $r++) {
        $order = for ($i = 0; $i -lt $Kinds.Count; $i++) { $Kinds[($i + $r) % $Kinds.Count] }
        foreach ($kind in $order) {
            $ends = Start-Ends $bed $kind
            try {
                for ($i = 0; $i -lt $tests.Count; $i++) {
                    $t = $tests[($i + $r) % $tests.Count]
                    $before = if ($kind -like 'ours*') { Get-EndMetrics $ends }
                    $m = Invoke-Iperf $bed $ends -Reverse:$t.Reverse
                    $batch = if ($kind -like 'ours*') { Get-BatchFigures $before (Get-EndMetrics $ends) -Reverse:$t.Reverse }
                    $m | Add-Member -NotePropertyMembers @{ Round = $r + 1; Kind = $kind; Test = $t.Name; Batches = $batch }
                    $results.Add($m)
                    $b = if ($batch) { "  send batch $($batch.SendBatch), receive batch $($batch.ReceiveBatch)" } else { '' }
                    Write-Host ("round {0}: {1,-13} {2,-18} {3,8:N1} Mbit/s  ends {4,6:N2} CPU-s/GB  machine {5,6:N2} CPU-s/GB{6}" -f ($r + 1), $kind, $t.Name, $m.Mbps, $m.EndsCpuSecPerGB, $m.MachineCpuSecPerGB, $b)
                }
            } finally { Stop-Ends $bed $kind $ends }
        }
    }
    if ($ProfileDir) { Invoke-EndsProfile $bed }
} finally {
    Remove-EgressTopology $bed
}
$elapsed = (Get-Date) - $started

$summary = foreach ($t in $tests) {
    foreach ($kind in $Kinds) {
        $rows = @($results | Where-Object { $_.Kind -eq $kind -and $_.Test -eq $t.Name })
        $batches = @($rows | Where-Object Batches | ForEach-Object Batches)
        $med = { param($name) $v = @($batches | ForEach-Object $name | Where-Object { $null -ne $_ }); if ($v.Count) { Get-Median $v } else { $null } }
        [pscustomobject]@{
            Test = $t.Name; Kind = $kind; MedianMbps = Get-Median $rows.Mbps
            Runs = ($rows.Mbps | ForEach-Object { '{0:N0}' -f $_ }) -join ' / '
            EndsCpuSecPerGB = Get-Median $rows.EndsCpuSecPerGB; MachineCpuSecPerGB = Get-Median $rows.MachineCpuSecPerGB
            SendBatch = & $med 'SendBatch'; ReceiveBatch = & $med 'ReceiveBatch'; ParallelSealPercent = & $med 'ParallelSealPercent'
            ParallelOpenPercent = & $med 'ParallelOpenPercent'
            TunSegmentsPerSuperRead = & $med 'TunSegmentsPerSuperRead'
            ReceiveCoalescedPercent = & $med 'ReceiveCoalescedPercent'
            TunPacketsPerCoalescedWrite = & $med 'TunPacketsPerCoalescedWrite'
            InlinePercent = & $med 'InlinePercent'
        }
    }
}
function Get-Ratio($a, $b) { if ($a -and $b) { [math]::Round($a / $b, 2) } else { $null } }
$ratios = foreach ($t in $tests) {
    $row = { param($kind) $summary | Where-Object { $_.Test -eq $t.Name -and $_.Kind -eq $kind } }
    $ours = & $row 'ours'; $wg = & $row 'wireguard-go'; $serial = & $row 'ours-serial-seal'
    if (-not $ours) { continue }
    [pscustomobject]@{
        Test = $t.Name
        Throughput = if ($wg) { Get-Ratio $ours.MedianMbps $wg.MedianMbps }
        EndsCpuPerGB = if ($wg) { Get-Ratio $ours.EndsCpuSecPerGB $wg.EndsCpuSecPerGB }
        MachineCpuPerGB = if ($wg) { Get-Ratio $ours.MachineCpuSecPerGB $wg.MachineCpuSecPerGB }
        # What parallel sealing adds: ours against ours with every batch sealed on one thread.
        ThroughputVsSerialSeal = if ($serial) { Get-Ratio $ours.MedianMbps $serial.MedianMbps }
        CpuPerGBVsSerialSeal = if ($serial) { Get-Ratio $ours.EndsCpuSecPerGB $serial.EndsCpuSecPerGB }
    }
}
$summary | Format-Table -AutoSize | Out-String -Width 220 | Write-Host
$ratios | Format-Table -AutoSize | Out-String -Width 220 | Write-Host
Write-Host ("cipher limit: {0} at {1} B, seal {2} ns, open {3} ns per packet" -f $cipher.Backend, $cipher.Size, $cipher.SealNsPerPacket, $cipher.OpenNsPerPacket)
Write-Host ("site-to-site: {0:N0} s" -f $elapsed.TotalSeconds)

if ($OutJson) {
    [pscustomobject]@{ Duration = $Duration; Rounds = $Rounds; Cipher = $cipher; Summary = $summary; Ratios = $ratios; Runs = $results } |
        ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $OutJson
}
if ($OutMarkdown) {
    $md = [System.Text.StringBuilder]::new()
    # run-bench.ps1 puts the date, command and machine above these tables.
    [void]$md.AppendLine("Duration of this run: $([math]::Round($elapsed.TotalMinutes, 1)) min. TCP, one stream, $Duration s per run, median of $Rounds alternated rounds.")
    [void]$md.AppendLine()
    [void]$md.AppendLine('| direction | both ends | median Mbit/s | rounds | CPU-s per GB, both endpoint processes | machine CPU-s per GB | datagrams per UDP send / receive call (% of received that came GRO-coalesced) | TUN: segments per super-packet read / packets per coalesced write | send batches sealed on 2+ cores, % / receive runs opened on 2+ cores per 100 receive calls | receive calls processed on the receive thread, % |')
    [void]$md.AppendLine('|---|---|---|---|---|---|---|---|---|---|')
    foreach ($x in $summary) {
        $batch = if ($null -ne $x.SendBatch) { "$($x.SendBatch) / $($x.ReceiveBatch) ($($x.ReceiveCoalescedPercent) %)" } else { '' }
        $tun = if ($null -ne $x.TunSegmentsPerSuperRead) { "$($x.TunSegmentsPerSuperRead) / $($x.TunPacketsPerCoalescedWrite)" } else { '' }
        [void]$md.AppendLine("| $($x.Test) | $($x.Kind) | $($x.MedianMbps) | $($x.Runs) | $($x.EndsCpuSecPerGB) | $($x.MachineCpuSecPerGB) | $batch | $tun | $($x.ParallelSealPercent) / $($x.ParallelOpenPercent) | $($x.InlinePercent) |")
    }
    [void]$md.AppendLine()
    [void]$md.AppendLine('| direction | throughput, ours / Debian wireguard-go (target >= 9) | CPU-s per GB of the ends, ours / Debian (target <= 0.15) | machine CPU per GB, ours / Debian |')
    [void]$md.AppendLine('|---|---|---|---|')
    foreach ($x in $ratios) { [void]$md.AppendLine("| $($x.Test) | **$($x.Throughput)** | **$($x.EndsCpuPerGB)** | $($x.MachineCpuPerGB) |") }
    if ($Kinds -contains 'ours-serial-seal') {
        [void]$md.AppendLine()
        [void]$md.AppendLine('| direction | throughput, parallel / serial sealing | CPU-s per GB of the ends, parallel / serial sealing |')
        [void]$md.AppendLine('|---|---|---|')
        foreach ($x in $ratios) { [void]$md.AppendLine("| $($x.Test) | $($x.ThroughputVsSerialSeal) | $($x.CpuPerGBVsSerialSeal) |") }
    }
    [void]$md.AppendLine()
    [void]$md.AppendLine("Cipher limit in the same run (bench/WgEngine.Bench --cipher-limit 1420, the engine's transport AEAD, $($cipher.Backend), one core): seal $($cipher.SealNsPerPacket) ns and open $($cipher.OpenNsPerPacket) ns per 1420-byte packet, $($cipher.SealCpuSecondsPerGB) + $($cipher.OpenCpuSecondsPerGB) CPU-s per GB for the two ends together.")
    Set-Content -LiteralPath $OutMarkdown -Value $md.ToString().TrimEnd()
}
if ($PassThru) { $summary; $ratios }
