# FloodRound: one run of our gateway under a valid-mac1 handshake flood with a real wireguard-go client
# relayed through tools/Flood, so its handshake is seen on the wire. tests/Interop/Flood.Tests.ps1
# asserts on what a round returns; bench/e2e/flood-client.ps1 reports its durations over rounds (a
# duration is a benchmark figure, not a test threshold).
# Everything a round creates (gateway, namespace, wireguard-go, the flood process) is removed before it
# returns, also on failure. Builds on WgInterop.psm1; the caller imports WireGuardGateway first.

Set-StrictMode -Version Latest
Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force -Global

function Get-WgHandshakeThreadCpu {
    <# CPU seconds (utime + stime) of this process's engine handshake threads (wg-handshake), from /proc. #>
    $total = 0.0
    foreach ($task in Get-ChildItem "/proc/$PID/task" -Directory) {
        $comm = Get-Content -LiteralPath (Join-Path $task.FullName 'comm') -ErrorAction Ignore
        if ($comm -ne 'wg-handshake') { continue }
        $stat = Get-Content -Raw -LiteralPath (Join-Path $task.FullName 'stat') -ErrorAction Ignore
        if (-not $stat) { continue }
        $f = $stat.Substring($stat.LastIndexOf(')') + 2).Split(' ')
        $total += ([long]$f[11] + [long]$f[12]) / 100.0
    }
    $total
}

function Initialize-WgFloodTool {
    <# Builds tools/Flood (Release) and returns the path of Flood.dll. #>
    $project = Join-Path $PSScriptRoot '../../tools/Flood'
    dotnet build $project -c Release -v q --nologo | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "building tools/Flood failed (exit code $LASTEXITCODE)" }
    (Resolve-Path (Join-Path $project 'bin/Release/net10.0/Flood.dll')).Path
}

function Invoke-WgFloodRound {
    <#
      Starts a gateway (ListenPort 0) and a wireguard-go client that knows no peer yet, floods the gateway
      for -Seconds (at most 10, tools/Flood's bound) from 64 source ports, one core, and once the gateway
      sends cookie replies gives the client its peer (through the relay) with a keepalive, so its first
      initiation is sent under load. Calls Get-WgPeer every 50 ms while the flood runs. Returns the flood
      tool's JSON (Flood, with .relay), the gateway's counters before and after, and what Get-WgPeer saw.
    #>
    param([Parameter(Mandatory)][string]$FloodDll, [ValidateRange(6, 10)][int]$Seconds = 10)
    $net = New-WgTestNetwork
    $serverName = "fl$($net.RunId)"
    $floodProc = $null
    try {
        $gw = Get-WgTestAddress $net 1
        $addr = Get-WgTestAddress $net 2
        $keys = New-WgGoKeyPair
        $server = Start-WgServer -Name $serverName -ListenPort 0 -Address $gw.V4Cidr -Egress None
        Add-WgPeer -Server $serverName -PublicKey $keys.PublicKey -AllowedIPs $addr.V4Host | Out-Null
        $client = New-WgGoDevice -Network $net -Role 'c' -PrivateKey $keys.PrivateKey -Address $addr.V4Cidr

        $before = $server.Stats
        $cpuBefore = Get-WgHandshakeThreadCpu
        $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
        foreach ($a in @($FloodDll, '--target', "127.0.0.1:$($server.ListenPort)", '--key', $server.PublicKey,
                '--seconds', "$Seconds", '--sockets', '64', '--relay')) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true
        $psi.UseShellExecute = $false
        $floodProc = [System.Diagnostics.Process]::Start($psi)
        # The flooder may use one core (the last) as fast as it can; the gateway keeps the rest. On the
        # shared 2-core host a flooder on every core would only measure who wins the scheduler.
        if ([Environment]::ProcessorCount -gt 1) { $floodProc.ProcessorAffinity = [IntPtr](1L -shl ([Environment]::ProcessorCount - 1)) }
        $first = $floodProc.StandardOutput.ReadLineAsync()
        if (-not $first.Wait(10000)) { throw 'the flood tool printed no relay port within 10 s' }
        if ($first.Result -notmatch '^relay-port (\d+)$') { throw "the flood tool prints its relay port first (got '$($first.Result)')" }
        $relayPort = [int]$Matches[1]

        # Under load: the gateway answers the flood with cookie replies instead of Diffie-Hellman.
        $underLoad = Wait-WgCondition { $server.Stats.CookieRepliesSent - $before.CookieRepliesSent -gt 1000 } -TimeoutSeconds 5

        # Now the client: its peer (the gateway, through the relay) with a keepalive, which starts a handshake at once.
        Add-WgGoPeer -Device $client -PublicKey $server.PublicKey -AllowedIPs $gw.V4Net -Endpoint "127.0.0.1:$relayPort" -PersistentKeepalive 25
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $slowest = 0.0; $calls = 0; $answered = 0; $handshakeAt = $null; $floodOnAtHandshake = $false
        while (-not $floodProc.HasExited) {
            $t = [System.Diagnostics.Stopwatch]::StartNew()
            $peer = Get-WgPeer -Server $serverName | Where-Object PublicKey -EQ $keys.PublicKey
            $slowest = [Math]::Max($slowest, $t.Elapsed.TotalSeconds); $calls++
            if ($null -ne $peer) { $answered++ }
            if ($null -eq $handshakeAt -and $null -ne $peer -and $null -ne $peer.LatestHandshake) {
                $handshakeAt = $sw.Elapsed.TotalSeconds
                $floodOnAtHandshake = -not $floodProc.HasExited
            }
            Start-Sleep -Milliseconds 50
        }
        $floodProc.WaitForExit()
        $lines = @($floodProc.StandardOutput.ReadToEnd() -split "`n" | Where-Object { $_.Trim() })
        [pscustomobject]@{
            UnderLoad              = $underLoad
            Flood                  = $lines[-1] | ConvertFrom-Json
            Before                 = $before
            After                  = $server.Stats
            HandshakeThreadCpu     = (Get-WgHandshakeThreadCpu) - $cpuBefore
            HandshakeSeenAtSeconds = $handshakeAt
            FloodOnAtHandshake     = $floodOnAtHandshake
            ClientLatestHandshake  = (Get-WgGoPeerStat $client).LatestHandshake
            GetWgPeerCalls         = $calls
            GetWgPeerAnswered      = $answered
            GetWgPeerSlowestSeconds = $slowest
        }
    } finally {
        if ($floodProc -and -not $floodProc.HasExited) { $floodProc.Kill(); [void]$floodProc.WaitForExit(5000) }
        Remove-WgGatewayTestRun -ServerName $serverName -Network $net
    }
}

function Format-WgFloodRound {
    <# The figures of a round as two lines (docs/performance.md, "Handshake flood"). #>
    param([Parameter(Mandatory)]$Round)
    $r = $Round.Flood
    $cookies = $Round.After.CookieRepliesSent - $Round.Before.CookieRepliesSent
    $dh = $Round.After.InvalidHandshakes - $Round.Before.InvalidHandshakes
    $dropped = $Round.After.DroppedPackets - $Round.Before.DroppedPackets
    $cpu = $Round.HandshakeThreadCpu
    "flood: {0} initiations in {1:F1} s = {2:N0}/s from {3} ports; gateway: {4:N0} cookie replies ({5:N0}/s), {6:N0} initiations taken to Diffie-Hellman, {7:N0} dropped (queue full, invalid, rate limited); handshake thread CPU {8:F2} s = {9:N0} messages per CPU-second" -f `
        $r.sent, $r.seconds, $r.packetsPerSecond, $r.sockets, $cookies, ($cookies / $r.seconds), $dh, $dropped, $cpu, (($cookies + $dh) / [Math]::Max($cpu, 0.01))
    "client: {0} initiations ({1} with mac2, {2} sent after the first mac2 one before the response), {3} cookie replies, first mac2 at {4} ms, response at {5} ms; handshake seen by Get-WgPeer {6:F2} s after the client started; slowest of {7} Get-WgPeer calls {8:F3} s" -f `
        $r.relay.initiations, $r.relay.initiationsWithMac2, $r.relay.initiationsAfterMac2BeforeResponse, $r.relay.cookieReplies, $r.relay.firstMac2AtMs, $r.relay.firstResponseAtMs, $Round.HandshakeSeenAtSeconds, $Round.GetWgPeerCalls, $Round.GetWgPeerSlowestSeconds
}

Export-ModuleMember -Function Get-WgHandshakeThreadCpu, Initialize-WgFloodTool, Invoke-WgFloodRound, Format-WgFloodRound
