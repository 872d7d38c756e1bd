# A fleet (docs/fleet.md) with real components: a private PostgreSQL cluster, two instances (pwsh processes
# running Start-WgServer -Registry, on loopback ports), nginx's stream module as the UDP load balancer with
# `hash $remote_addr consistent`, and real wireguard-go clients (their TUNs in namespaces of this test) whose
# only endpoint is the balancer. Management goes through Connect-WgServer -Registry in this session.
# Needs the module built; missing tools skip loudly, or fail under CI=true.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'FleetSupport.psm1') -Force
    $skip = Test-FleetSuiteSkip 'Fleet'
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'FleetSupport.psm1') -Force
}

Describe 'Fleet prerequisites' {
    It 'has PostgreSQL, nginx with the stream module, and the interop tools' -Skip:$skip {
        @((Test-WgInteropPrerequisite).Missing) + @((Test-FleetPrerequisite).Missing) | Where-Object { $_ } | Should -BeNullOrEmpty
    }
}

Describe 'A fleet behind a UDP load balancer' -Skip:$skip {
    BeforeAll {
        Import-WgGatewayModule
        # The instances import the same build as this session.
        $script:manifest = $env:WGI_GATEWAY_MODULE ? $env:WGI_GATEWAY_MODULE : (Resolve-Path (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1')).Path
        $script:run = New-FleetTestRun -Prefix 'fl'
        $script:net = $run.Net; $script:dir = $run.Dir; $script:fleet = $run.Fleet; $script:gw = $run.Gw
        $script:secretPath = $run.SecretPath; $script:keyPath = $run.KeyPath; $script:pg = $run.Pg; $script:created = $run.Created
        $script:a = $null; $script:b = $null; $script:lb = $null
        try {
            $script:portA = Get-FreePort Udp; $script:portB = Get-FreePort Udp; $script:portLb = Get-FreePort Udp
            $script:nameA = "wgf$($net.RunId)a"; $script:nameB = "wgf$($net.RunId)b"
            $instanceArgs = @{ Manifest = $manifest; Pg = $pg; Fleet = $fleet; SecretPath = $secretPath; KeyPath = $keyPath; Folder = $dir }
            $script:instanceArgs = $instanceArgs
            $script:a = Start-FleetInstance @instanceArgs -Port $portA -Name $nameA
            $script:b = Start-FleetInstance @instanceArgs -Port $portB -Name $nameB
            $script:lb = Start-FleetBalancer -Folder $dir -Port $portLb -Upstream $portA, $portB
            Connect-WgServer -Registry $pg.ConnectionString -Fleet $fleet -FleetSecretPath $secretPath | Out-Null
        } catch {
            Stop-FleetBalancer $script:lb; Stop-FleetInstance $script:a -Kill; Stop-FleetInstance $script:b -Kill
            Disconnect-WgServer; Remove-FleetPostgres $script:pg; Remove-WgTestNetwork $net
            throw
        }

        # A wireguard-go client whose peer is the fleet at $Endpoint (the balancer unless told otherwise).
        function New-FleetClient([string]$Role, [string]$Endpoint = "127.0.0.1:$portLb") {
            $kp = New-WgGoKeyPair
            $peer = Add-WgPeer -PublicKey $kp.PublicKey -Name $Role
            $addr = ($peer.AllowedIPs | Select-Object -First 1) -replace '/32$', '/24'
            $dev = New-WgGoClient -Network $net -Role $Role -PrivateKey $kp.PrivateKey -Address $addr -PeerPublicKey $created.PublicKey `
                -Endpoint $Endpoint -AllowedIPs $gw.V4Net -PersistentKeepalive 1
            [pscustomobject]@{ Device = $dev; PublicKey = $kp.PublicKey; Peer = $peer }
        }
        function Test-OnInstance([string]$Name, [string]$Key) { (Get-UapiPeerKey $Name) -contains $Key }
    }

    AfterAll {
        Stop-FleetBalancer $script:lb
        Stop-FleetInstance $script:a; Stop-FleetInstance $script:b
        Disconnect-WgServer
        Remove-FleetPostgres $script:pg
        Remove-WgTestNetwork $script:net
    }

    It 'New-WgFleet wrote the fleet key (mode 0600) and gave its public key; a second one is FleetExists' {
        $created.PublicKey | Should -BeExactly (Invoke-WgNative wg 'pubkey' -InputText (Get-Content $keyPath -Raw))[0].Trim()
        (Get-Item $keyPath).UnixFileMode | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
        New-WgFleet -Registry $pg.ConnectionString -Name $fleet -FleetSecretPath $secretPath -PrivateKey (New-WgKey).PrivateKey -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'FleetExists*'
    }

    It 'refuses an instance with another key (FleetKeyMismatch) and a wrong secret (FleetSecretMismatch)' {
        $ps = [powershell]::Create()
        try {
            $other = Join-Path $dir 'other.secret'; Set-Content $other 'not the secret of this fleet at all'
            $null = $ps.AddScript({
                param($m, $r, $f, $s, $o, $k)
                Import-Module $m
                Start-WgServer -Registry $r -Fleet $f -FleetSecretPath $s -PrivateKey $k -ListenPort 0 -ErrorVariable e1 -ErrorAction SilentlyContinue
                try { Start-WgServer -Registry $r -Fleet $f -FleetSecretPath $o -PrivateKey $k -ListenPort 0 -ErrorAction Stop } catch { $e2 = $_ }
                @($e1[0].FullyQualifiedErrorId, $e2.FullyQualifiedErrorId)
            }).AddArgument($manifest).AddArgument($pg.ConnectionString).AddArgument($fleet).AddArgument($secretPath).AddArgument($other).AddArgument((New-WgKey).PrivateKey)
            $ids = $ps.Invoke()
            $ids[0] | Should -BeLike 'FleetKeyMismatch*'
            $ids[1] | Should -BeLike 'FleetSecretMismatch*'
        } finally { $ps.Dispose() }
    }

    It 'runs an instance in a session: Get-WgServer shows it, Stop-WgServer stops it and the session is its own again' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                param($m, $r, $f, $s, $k)
                Import-Module $m
                $srv = Start-WgServer -Name inproc -Registry $r -Fleet $f -FleetSecretPath $s -PrivateKeyPath $k -ListenPort 0 -BindAddress 127.0.0.1 -Egress None -InstanceId "inproc-$PID" -ErrorAction Stop
                $seen = Get-WgServer
                Stop-WgServer -Name inproc -Confirm:$false
                $deadline = [DateTime]::UtcNow.AddSeconds(10)
                while (@(Get-WgServer).Count -gt 0 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
                [pscustomobject]@{ Backend = $seen.Backend; PeerCount = $seen.PeerCount; After = @(Get-WgServer).Count; Key = $srv.PublicKey }
            }).AddArgument($manifest).AddArgument($pg.ConnectionString).AddArgument($fleet).AddArgument($secretPath).AddArgument($keyPath)
            $r = $ps.Invoke()
            $ps.Streams.Error | Should -BeNullOrEmpty
            $r.Backend | Should -Be 'Fleet/Userspace'
            $r.Key | Should -Be $created.PublicKey
            $r.After | Should -Be 0
        } finally { $ps.Dispose() }
    }

    It 'manages the fleet from this session: allocation, overlap refused, and every instance applies a change' {
        $k = (New-WgKey).PublicKey
        $p = Add-WgPeer -PublicKey $k -Name 'managed'
        $p.AllowedIPs | Should -HaveCount 1
        Add-WgPeer -PublicKey (New-WgKey).PublicKey -AllowedIPs $p.AllowedIPs -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'AllowedIPsOverlap*'
        Wait-WgCondition { (Test-OnInstance $nameA $k) -and (Test-OnInstance $nameB $k) } -TimeoutSeconds 10 | Should -BeTrue
        Set-WgPeer -PublicKey $k -Name 'renamed'
        (Get-WgPeer -PublicKey $k).Name | Should -Be 'renamed'
        Disable-WgPeer -PublicKey $k
        Wait-WgCondition { -not (Test-OnInstance $nameA $k) -and -not (Test-OnInstance $nameB $k) } -TimeoutSeconds 10 | Should -BeTrue
        Enable-WgPeer -PublicKey $k
        Wait-WgCondition { (Test-OnInstance $nameA $k) -and (Test-OnInstance $nameB $k) } -TimeoutSeconds 10 | Should -BeTrue
        Remove-WgPeer -PublicKey $k -Confirm:$false
        Wait-WgCondition { -not (Test-OnInstance $nameA $k) -and -not (Test-OnInstance $nameB $k) } -TimeoutSeconds 10 | Should -BeTrue
        $c = New-WgClient -Name 'onboarded' -Endpoint "127.0.0.1:$portLb"
        $c.Config | Should -Match ([regex]::Escape("PublicKey = $($created.PublicKey)"))
        Wait-WgCondition { Test-OnInstance $nameB $c.PublicKey } -TimeoutSeconds 10 | Should -BeTrue
    }

    It 'fails over: kill -9 of the client''s instance, traffic resumes through the other in under 30 s, nothing changed on the client' {
        $script:client = New-FleetClient 'c1'
        (Test-Ping -Namespace $client.Device.Namespace -Target $gw.V4 -Count 3 -Deadline 10).Success | Should -BeTrue
        # The instance holding the session, as the registry's live state says (each instance reports every 5 s).
        Wait-WgCondition { (Get-WgPeer -PublicKey $client.PublicKey).Instance -in $nameA, $nameB } -TimeoutSeconds 20 | Should -BeTrue
        $before = Get-WgPeer -PublicKey $client.PublicKey
        $script:holder = $before.Instance
        $before.LatestHandshake | Should -Not -BeNullOrEmpty
        $endpointBefore = (Get-WgGoPeerStat $client.Device).Endpoint
        $stream = Start-WgPingStream -Namespace $client.Device.Namespace -Target $gw.V4 -Count 200 -Interval 0.2
        try {
            Start-Sleep -Seconds 3   # part of the stream is before the crash
            $killedAt = [DateTimeOffset]::UtcNow
            Stop-FleetInstance ($holder -eq $nameA ? $a : $b) -Kill
            $r = Wait-WgPingStream $stream
        } finally { Stop-WgPingStream $stream }
        $r.Received | Should -BeGreaterThan 0
        # The longest run of lost pings is the outage: under 30 s (REKEY_TIMEOUT 5 s + KEEPALIVE_TIMEOUT 10 s make a new handshake).
        $gap = 0; $run = 0; $prev = -1
        foreach ($s in $r.LostSeq) { $run = ($s -eq $prev + 1) ? $run + 1 : 1; $prev = $s; $gap = [math]::Max($gap, $run) }
        Write-Host "FIGURE fleet failover: longest outage $([math]::Round($gap * 0.2, 1)) s ($($r.Lost) of $($r.Transmitted) pings lost)"
        ($gap * 0.2) | Should -BeLessThan 30
        # Replies came after the crash: the last 10 pings got through.
        @($r.LostSeq | Where-Object { $_ -gt $r.Transmitted - 10 }) | Should -BeNullOrEmpty
        (Get-WgGoPeerStat $client.Device).Endpoint | Should -Be $endpointBefore
        $survivor = $holder -eq $nameA ? $nameB : $nameA
        Wait-WgCondition { (Get-WgPeer -PublicKey $client.PublicKey).Instance -eq $survivor } -TimeoutSeconds 20 | Should -BeTrue
        $after = Get-WgPeer -PublicKey $client.PublicKey
        # Bytes of both instances, each counted once: at least what the dead one had reported, plus the survivor's.
        $after.ReceivedBytes | Should -BeGreaterThan $before.ReceivedBytes
    }

    It 'a peer added while an instance is down works on it after it restarts' {
        $down = $holder
        $kp = New-WgGoKeyPair
        $peer = Add-WgPeer -PublicKey $kp.PublicKey -Name 'while-down'
        Wait-WgCondition { Test-OnInstance ($down -eq $nameA ? $nameB : $nameA) $kp.PublicKey } -TimeoutSeconds 10 | Should -BeTrue
        $restarted = Start-FleetInstance @instanceArgs -Port ($down -eq $nameA ? $portA : $portB) -Name $down
        if ($down -eq $nameA) { $script:a = $restarted } else { $script:b = $restarted }
        Test-OnInstance $down $kp.PublicKey | Should -BeTrue
        # Straight to the restarted instance (not through the balancer): it serves the new peer.
        $addr = ($peer.AllowedIPs | Select-Object -First 1) -replace '/32$', '/24'
        $dev = New-WgGoClient -Network $net -Role 'c2' -PrivateKey $kp.PrivateKey -Address $addr -PeerPublicKey $created.PublicKey `
            -Endpoint "127.0.0.1:$($restarted.Port)" -AllowedIPs $gw.V4Net -PersistentKeepalive 1
        (Test-Ping -Namespace $dev.Namespace -Target $gw.V4 -Count 3 -Deadline 10).Success | Should -BeTrue
    }

    It 'keeps traffic going while the database is down; writes fail with RegistryUnavailable, then work again' {
        (Test-Ping -Namespace $client.Device.Namespace -Target $gw.V4 -Count 3 -Deadline 20 -MinReceived 3).Success | Should -BeTrue
        $stream = Start-WgPingStream -Namespace $client.Device.Namespace -Target $gw.V4 -Count 75 -Interval 0.2
        try {
            Start-Sleep -Seconds 1
            Stop-FleetPostgres $pg
            try {
                $k = (New-WgKey).PublicKey
                Add-WgPeer -PublicKey $k -ErrorVariable e -ErrorAction SilentlyContinue
                $e[0].FullyQualifiedErrorId | Should -BeLike 'RegistryUnavailable*'
                $e[0].ToString() | Should -Not -Match 'Username=|Password'
                Start-Sleep -Seconds 6   # instances go through at least one failed poll and report
            } finally { Start-FleetPostgres $pg }
            $r = Wait-WgPingStream $stream
        } finally { Stop-WgPingStream $stream }
        $r.Lost | Should -Be 0 -Because 'the data path does not depend on the database'
        $k2 = (New-WgKey).PublicKey
        Add-WgPeer -PublicKey $k2 | Should -Not -BeNullOrEmpty
        Get-WgPeer -PublicKey $k -ErrorAction SilentlyContinue | Should -BeNullOrEmpty -Because 'the write during the outage left nothing'
        Wait-WgCondition { (Test-OnInstance $nameA $k2) -and (Test-OnInstance $nameB $k2) } -TimeoutSeconds 20 | Should -BeTrue
    }
}
