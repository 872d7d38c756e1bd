# A fleet (docs/fleet.md) with real components: a private PostgreSQL cluster, two instances (pwsh processes
# running Start-WgServer -Registry, each in its own network namespace on a test lan, both on port 51820 as one
# gateway identity), nginx's stream module as the UDP load balancer with `hash $remote_addr consistent` (in the
# lan's namespace), and real wireguard-go clients, each in its own namespace on the lan with its own address,
# whose only endpoint is the balancer. The lan (10.<run>.128.0/24) lives only in this test's namespaces.
# Instances reach PostgreSQL through its unix socket; management goes through Connect-WgServer -Registry
# (loopback) in this session.
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
            $script:port = 51820   # every instance and the balancer: one gateway identity, each in its own namespace
            $script:lan = New-FleetLan -Network $net
            $script:nsA = New-WgTestNamespace -Network $net -Role 'ia'; $script:addrA = Add-FleetLanHost $lan $nsA 11
            $script:nsB = New-WgTestNamespace -Network $net -Role 'ib'; $script:addrB = Add-FleetLanHost $lan $nsB 12
            $script:nameA = "wgf$($net.RunId)a"; $script:nameB = "wgf$($net.RunId)b"
            $instanceArgs = @{ Manifest = $manifest; Pg = $pg; Fleet = $fleet; SecretPath = $secretPath; KeyPath = $keyPath; Folder = $dir; Port = $port }
            $script:instanceArgs = $instanceArgs
            $script:place = @{ $nameA = @{ Namespace = $nsA; BindAddress = $addrA }; $nameB = @{ Namespace = $nsB; BindAddress = $addrB } }
            $pa = $place[$nameA]; $pb = $place[$nameB]
            $script:a = Start-FleetInstance @instanceArgs -Name $nameA @pa
            $script:b = Start-FleetInstance @instanceArgs -Name $nameB @pb
            $script:lb = Start-FleetBalancer -Folder $dir -Namespace $lan.Namespace -ListenAddress $lan.Address -Port $port -Upstream $a.Endpoint, $b.Endpoint
            $script:lbEndpoint = "$($lan.Address):$port"
            $script:nextHost = 100
            Connect-WgServer -Registry $pg.ConnectionString -Fleet $fleet -FleetSecretPath $secretPath | Out-Null
        } catch {
            Stop-FleetBalancer $script:lb; Stop-FleetInstance $script:a -Kill; Stop-FleetInstance $script:b -Kill
            Disconnect-WgServer; Remove-FleetPostgres $script:pg; Remove-WgTestNetwork $net
            throw
        }

        # A wireguard-go client in its own namespace, a lan host with its own address, whose peer is the fleet at
        # $Endpoint (the balancer unless told otherwise). $Key: a key pair already added as a peer.
        function New-FleetClient([string]$Role, [string]$Endpoint = $lbEndpoint, $Key, $Peer) {
            $kp = $Key ? $Key : (New-WgGoKeyPair)
            if (-not $Peer) { $Peer = Add-WgPeer -PublicKey $kp.PublicKey -Name $Role }
            $addr = ($Peer.AllowedIPs | Select-Object -First 1) -replace '/32$', '/24'
            $dev = New-WgGoDevice -Network $net -Role $Role -PrivateKey $kp.PrivateKey -Address $addr -InNamespace
            $lanAddress = Add-FleetLanHost $lan $dev.Namespace ($script:nextHost++)
            Add-WgGoPeer -Device $dev -PublicKey $created.PublicKey -AllowedIPs $gw.V4Net -Endpoint $Endpoint -PersistentKeepalive 1
            [pscustomobject]@{ Device = $dev; PublicKey = $kp.PublicKey; Peer = $Peer; LanAddress = $lanAddress }
        }
        function Test-OnInstance([string]$Name, [string]$Key) { (Get-UapiPeerKey $Name) -contains $Key }
        # The instance that holds a peer's WireGuard session, as the instances themselves say (UAPI latest handshake);
        # every instance knows every peer, only the one the client reached has a handshake with it. $null if none.
        function Get-SessionHolder([string]$Key) {
            foreach ($n in $nameA, $nameB) {
                $line = @(& wg show $n latest-handshakes 2>$null) | Where-Object { $_ -like "$Key`t*" }
                if ($line -and [long](($line -split "`t")[1]) -gt 0) { return $n }
            }
            $null
        }
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
        $c = New-WgClient -Name 'onboarded' -Endpoint $lbEndpoint
        $c.Config | Should -Match ([regex]::Escape("PublicKey = $($created.PublicKey)"))
        Wait-WgCondition { Test-OnInstance $nameB $c.PublicKey } -TimeoutSeconds 10 | Should -BeTrue
    }

    It 'spreads clients over the instances by source address; each instance serves the clients it gets' {
        # hash $remote_addr consistent places each address on one instance; new clients (new addresses) until both
        # instances hold at least one. Ten all landing on one instance would happen with probability 2/1024.
        $script:clients = [System.Collections.Generic.List[object]]::new()
        $holders = @{}
        while ($clients.Count -lt 10 -and $holders.Count -lt 2) {
            $c = New-FleetClient "c$($clients.Count + 1)"
            (Test-Ping -Namespace $c.Device.Namespace -Target $gw.V4 -Count 3 -Deadline 10).Success | Should -BeTrue
            $c | Add-Member Holder (Get-SessionHolder $c.PublicKey)
            $c.Holder | Should -BeIn $nameA, $nameB
            $holders[$c.Holder] = $true
            $clients.Add($c)
        }
        Write-Host "FIGURE fleet spread: $($clients.Count) clients, on $nameA`: $(@($clients | Where-Object Holder -eq $nameA).Count), on $nameB`: $(@($clients | Where-Object Holder -eq $nameB).Count)"
        $holders.Keys | Sort-Object | Should -Be (@($nameA, $nameB) | Sort-Object)
        # The registry's live state (each instance reports every 5 s) agrees with the instances.
        foreach ($c in $clients) {
            Wait-WgCondition { (Get-WgPeer -PublicKey $c.PublicKey).Instance -eq $c.Holder } -TimeoutSeconds 20 | Should -BeTrue -Because "$($c.Peer.Name) is on $($c.Holder)"
        }
    }

    It 'fails over: kill -9 of the client''s instance, traffic resumes through the other in under 30 s, nothing changed on the client' {
        $script:client = $clients[0]
        $script:holder = $client.Holder
        $bystander = $clients | Where-Object Holder -ne $holder | Select-Object -First 1
        $before = Get-WgPeer -PublicKey $client.PublicKey
        $before.Instance | Should -Be $holder
        $before.LatestHandshake | Should -Not -BeNullOrEmpty
        $endpointBefore = (Get-WgGoPeerStat $client.Device).Endpoint
        $endpointBefore | Should -Be $lbEndpoint
        $stream = Start-WgPingStream -Namespace $client.Device.Namespace -Target $gw.V4 -Count 200 -Interval 0.2
        $other = Start-WgPingStream -Namespace $bystander.Device.Namespace -Target $gw.V4 -Count 100 -Interval 0.2
        try {
            Start-Sleep -Seconds 3   # part of the stream is before the crash
            Stop-FleetInstance ($holder -eq $nameA ? $a : $b) -Kill
            $r = Wait-WgPingStream $stream
            $o = Wait-WgPingStream $other
        } finally { Stop-WgPingStream $stream; Stop-WgPingStream $other }
        $o.Lost | Should -Be 0 -Because "the other instance's clients ($($bystander.Peer.Name)) are not touched by the crash"
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
        $pd = $place[$down]
        $restarted = Start-FleetInstance @instanceArgs -Name $down @pd
        if ($down -eq $nameA) { $script:a = $restarted } else { $script:b = $restarted }
        Test-OnInstance $down $kp.PublicKey | Should -BeTrue
        # Straight to the restarted instance (not through the balancer): it serves the new peer.
        $c = New-FleetClient 'cw' -Endpoint $restarted.Endpoint -Key $kp -Peer $peer
        (Test-Ping -Namespace $c.Device.Namespace -Target $gw.V4 -Count 3 -Deadline 10).Success | Should -BeTrue
        Get-SessionHolder $kp.PublicKey | Should -Be $down
    }

    It 'keeps traffic going while the database is down; writes fail with RegistryUnavailable, then work again' {
        # The instance restarted by the test before is back in the balancer, and the client's source address may
        # hash to it again: the client then has no session there and reaches it only after its own re-handshake
        # (no reply for 15 s, the whitepaper's Keepalive-Timeout + Rekey-Timeout). So the path may take as long
        # as a failover to come back, and this precondition allows what the failover test allows (30 s).
        (Test-Ping -Namespace $client.Device.Namespace -Target $gw.V4 -Count 3 -Deadline 35 -MinReceived 3).Success | Should -BeTrue
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

    It 'a data quota is the fleet''s: used up through one instance, the client finds it used up on the other; Enable-WgPeer starts it afresh' {
        $kp = New-WgGoKeyPair
        $peer = Add-WgPeer -PublicKey $kp.PublicKey -Name 'quota'
        Set-WgPeer -PublicKey $kp.PublicKey -QuotaBytes 200KB | Out-Null
        (Get-WgPeer -PublicKey $kp.PublicKey).QuotaBytes | Should -Be 200KB
        Wait-WgCondition { (Test-OnInstance $nameA $kp.PublicKey) -and (Test-OnInstance $nameB $kp.PublicKey) } -TimeoutSeconds 10 | Should -BeTrue
        # Straight to A: ~2.4 KB per ping and reply, so at most ~85 of these get through before A's engine stops the peer.
        $first = New-FleetClient 'cqa' -Endpoint $a.Endpoint -Key $kp -Peer $peer
        $used = Invoke-InNamespace $first.Device.Namespace ping '-n', '-q', '-s', '1200', '-i', '0.02', '-c', '300', '-w', '20', $gw.V4 -AllowFailure
        $got = if (($used -join ' ') -match '(\d+) received') { [int]$Matches[1] } else { 0 }
        Write-Host "FIGURE fleet quota: $got of 300 pings of 1200 B through instance A before a 200 KB quota stopped them"
        $got | Should -BeGreaterThan 10
        $got | Should -BeLessThan 300
        # A's report brings its count to the registry: the fleet shows the quota used up.
        Wait-WgCondition { (Get-WgPeer -PublicKey $kp.PublicKey).DisabledReason -eq 'QuotaExceeded' } -TimeoutSeconds 20 | Should -BeTrue
        (Test-Ping -Namespace $first.Device.Namespace -Target $gw.V4 -Count 3 -Deadline 3).Received | Should -Be 0
        Remove-WgGoClient -Network $net -Device $first.Device

        # B reads A's count after its own next report (heartbeat); then the same client, now at B, gets nothing through.
        $psql = @('-h', $pg.Socket, '-p', "$($pg.Port)", '-U', 'wg', '-d', 'postgres', '-Atc')
        $seen = (Invoke-WgNative psql ($psql + 'SELECT now()'))[0]
        Wait-WgCondition { (Invoke-WgNative psql ($psql + "SELECT count(*) FROM instances WHERE fleet = '$fleet' AND id = '$nameB' AND heartbeat > '$seen'"))[0] -eq '1' } -TimeoutSeconds 20 | Should -BeTrue
        $second = New-FleetClient 'cqb' -Endpoint $b.Endpoint -Key $kp -Peer $peer
        (Test-Ping -Namespace $second.Device.Namespace -Target $gw.V4 -Count 5 -Deadline 8).Received | Should -Be 0
        (Get-WgGoPeerStat $second.Device).LatestHandshake | Should -Not -BeNullOrEmpty -Because 'the client reached B (B answered its handshake), and B refused its traffic'
        Wait-WgCondition { -not (Test-OnInstance $nameB $kp.PublicKey) } -TimeoutSeconds 10 | Should -BeTrue -Because 'B disabled the peer for its quota (the registry has it enabled)'

        Enable-WgPeer -PublicKey $kp.PublicKey
        Wait-WgCondition { (Test-Ping -Namespace $second.Device.Namespace -Target $gw.V4 -Count 1 -Deadline 2).Success } -TimeoutSeconds 30 | Should -BeTrue
        $after = Get-WgPeer -PublicKey $kp.PublicKey
        ($after.Enabled, $after.DisabledReason) | Should -Be @($true, $null)
    }
}
