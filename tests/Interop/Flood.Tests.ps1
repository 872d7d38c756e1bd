# DoS protection of OUR gateway under a handshake flood, with a real wireguard-go client (issue 3, item 2).
# tools/Flood floods the gateway on loopback for at most 10 s with initiations that carry a VALID mac1
# (real Noise messages from unknown keys, from 64 source ports), and relays one wireguard-go client so
# the test sees its handshake on the wire: the first initiation is answered with a cookie reply, the
# client's retry carries mac2 and is answered within 2 s. Meanwhile the cmdlets must stay responsive.
# Prints the flood figures (docs/performance.md, "Handshake flood").

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Flood' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force

    # CPU seconds (utime + stime) of this process's engine handshake threads, from /proc.
    function Get-HandshakeThreadCpu {
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
}

Describe 'Gateway under a valid-mac1 handshake flood' -Skip:$skip {
    BeforeAll {
        $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
        $manifest = $env:WGI_GATEWAY_MODULE
        if (-not $manifest) {
            $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
            if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) {
                throw "WireGuardGateway is not built ($repoRoot/module/bin missing): run ./build.ps1 Build first"
            }
        }
        Import-Module $manifest -Force
        $floodProject = Join-Path $repoRoot 'tools/Flood'
        dotnet build $floodProject -c Release -v q --nologo | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "building tools/Flood failed (exit code $LASTEXITCODE)" }
        $floodDll = Join-Path $floodProject 'bin/Release/net10.0/Flood.dll'

        $net = New-WgTestNetwork
        $serverName = "fl$($net.RunId)"
        $run = @{ Flood = $null }   # the flood process, for AfterAll to stop if a test failed mid-way
        try {
            $gw = Get-WgTestAddress $net 1
            $addr = Get-WgTestAddress $net 2
            $keys = New-WgGoKeyPair
            $server = Start-WgServer -Name $serverName -ListenPort 0 -Address $gw.V4Cidr -Egress None
            Add-WgPeer -Server $serverName -PublicKey $keys.PublicKey -AllowedIPs $addr.V4Host | Out-Null
            # The client exists but knows no peer yet: its first initiation is sent when the flood is on.
            $client = New-WgGoDevice -Network $net -Role 'c' -PrivateKey $keys.PrivateKey -Address $addr.V4Cidr
        } catch {
            Get-WgServer -Name $serverName -ErrorAction Ignore | Stop-WgServer -Confirm:$false -ErrorAction Ignore
            Remove-WgTestNetwork $net
            throw
        }
    }
    AfterAll {
        if ($run.Flood -and -not $run.Flood.HasExited) { $run.Flood.Kill(); [void]$run.Flood.WaitForExit(5000) }
        Get-WgServer -Name $serverName -ErrorAction Ignore | Stop-WgServer -Confirm:$false -ErrorAction Ignore
        Remove-WgTestNetwork $net
        Get-Module WireGuardGateway | Remove-Module -ErrorAction Ignore
    }

    It 'the client completes its handshake via a cookie reply and a mac2 retry, and cmdlets stay responsive' {
        $before = $server.Stats
        $cpuBefore = Get-HandshakeThreadCpu

        $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
        foreach ($a in @($floodDll, '--target', "127.0.0.1:$($server.ListenPort)", '--key', $server.PublicKey,
                '--seconds', '10', '--sockets', '64', '--relay')) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true
        $psi.UseShellExecute = $false
        $floodProc = [System.Diagnostics.Process]::Start($psi)
        $run.Flood = $floodProc
        # The flooder may use one core (the last) as fast as it can; the gateway keeps the rest. On the
        # shared 2-core host a flooder on every core would only measure who wins the scheduler.
        if ([Environment]::ProcessorCount -gt 1) { $floodProc.ProcessorAffinity = [IntPtr](1L -shl ([Environment]::ProcessorCount - 1)) }
        $first = $floodProc.StandardOutput.ReadLineAsync()
        $first.Wait(10000) | Should -BeTrue
        $first.Result -match '^relay-port (\d+)$' | Should -BeTrue -Because "the flood tool prints its relay port first (got '$($first.Result)')"
        $relayPort = [int]$Matches[1]

        # Under load: the gateway answers the flood with cookie replies instead of Diffie-Hellman.
        Wait-WgCondition { $server.Stats.CookieRepliesSent - $before.CookieRepliesSent -gt 1000 } -TimeoutSeconds 5 |
            Should -BeTrue -Because 'the flood must put the gateway under load'

        # Now the client: its peer (the gateway, through the relay) with a keepalive, which starts a handshake at once.
        Add-WgGoPeer -Device $client -PublicKey $server.PublicKey -AllowedIPs $gw.V4Net -Endpoint "127.0.0.1:$relayPort" -PersistentKeepalive 25
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $slowest = 0.0; $calls = 0; $handshakeAt = $null; $floodOnAtHandshake = $false
        while (-not $floodProc.HasExited) {
            $t = [System.Diagnostics.Stopwatch]::StartNew()
            $peer = Get-WgPeer -Server $serverName | Where-Object PublicKey -EQ $keys.PublicKey
            $slowest = [Math]::Max($slowest, $t.Elapsed.TotalSeconds); $calls++
            if ($null -eq $handshakeAt -and $null -ne $peer.LatestHandshake) {
                $handshakeAt = $sw.Elapsed.TotalSeconds
                $floodOnAtHandshake = -not $floodProc.HasExited
            }
            Start-Sleep -Milliseconds 50
        }
        $floodProc.WaitForExit()
        $lines = @($floodProc.StandardOutput.ReadToEnd() -split "`n" | Where-Object { $_.Trim() })
        $r = $lines[-1] | ConvertFrom-Json
        $after = $server.Stats
        $cpu = (Get-HandshakeThreadCpu) - $cpuBefore

        $cookies = $after.CookieRepliesSent - $before.CookieRepliesSent
        $dh = $after.InvalidHandshakes - $before.InvalidHandshakes
        $dropped = $after.DroppedPackets - $before.DroppedPackets
        Write-Host ("flood: {0} initiations in {1:F1} s = {2:N0}/s from {3} ports; gateway: {4:N0} cookie replies ({5:N0}/s), {6:N0} initiations taken to Diffie-Hellman, {7:N0} dropped (queue full, invalid, rate limited); handshake thread CPU {8:F2} s = {9:N0} messages per CPU-second" -f `
            $r.sent, $r.seconds, $r.packetsPerSecond, $r.sockets, $cookies, ($cookies / $r.seconds), $dh, $dropped, $cpu, (($cookies + $dh) / [Math]::Max($cpu, 0.01)))
        Write-Host ("client: {0} initiations ({1} with mac2), {2} cookie replies, first mac2 at {3} ms, response at {4} ms; handshake seen by Get-WgPeer {5:F2} s after the client started; slowest of {6} Get-WgPeer calls {7:F3} s" -f `
            $r.relay.initiations, $r.relay.initiationsWithMac2, $r.relay.cookieReplies, $r.relay.firstMac2AtMs, $r.relay.firstResponseAtMs, $handshakeAt, $calls, $slowest)

        # The handshake happened, during the flood.
        $handshakeAt | Should -Not -BeNullOrEmpty
        $floodOnAtHandshake | Should -BeTrue
        (Get-WgGoPeerStat $client).LatestHandshake | Should -Not -BeNullOrEmpty
        # Through the cookie exchange: refused first (no mac2 yet), cookie reply, retry with mac2, answered within 2 s.
        $r.relay.firstInitiationHadMac2 | Should -BeFalse
        $r.relay.cookieReplies | Should -BeGreaterOrEqual 1
        $r.relay.initiationsWithMac2 | Should -BeGreaterOrEqual 1
        $r.relay.responses | Should -BeGreaterOrEqual 1
        ($r.relay.firstResponseAtMs - $r.relay.firstMac2AtMs) | Should -BeGreaterOrEqual 0
        ($r.relay.firstResponseAtMs - $r.relay.firstMac2AtMs) | Should -BeLessThan 2000
        # The gateway answered the flood with cookies (the flooder received some; the gateway sent at least as many).
        $r.cookieRepliesReceived | Should -BeGreaterThan 0
        $cookies | Should -BeGreaterOrEqual $r.cookieRepliesReceived
        # And the cmdlets answered promptly throughout.
        $calls | Should -BeGreaterThan 10
        $slowest | Should -BeLessThan 1.0
    }
}
