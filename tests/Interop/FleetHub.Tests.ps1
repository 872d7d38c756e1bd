# The cross-instance hub (docs/fleet.md): a private PostgreSQL cluster, two fleet instances (pwsh processes running
# Start-WgServer -Registry -MeshListenPort, each in its own namespace on a test lan, so the mesh between them crosses
# a real link), and real wireguard-go clients (each in its own namespace on the lan) pinned to an instance each by
# connecting to its own address (no balancer: placement is deterministic).
# X and Z on instance A, Y on instance B: X reaches Y only through the mesh between A and B.
# Needs the module built; missing tools skip loudly, or fail under CI=true.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'FleetSupport.psm1') -Force
    $skip = Test-FleetSuiteSkip 'FleetHub'
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'FleetSupport.psm1') -Force
}

Describe 'Fleet hub prerequisites' {
    It 'has PostgreSQL and the interop tools' -Skip:$skip {
        @((Test-WgInteropPrerequisite).Missing) + @((Test-FleetPrerequisite).Missing) | Where-Object { $_ } | Should -BeNullOrEmpty
    }
}

Describe 'Peers on different instances reach each other over the mesh' -Skip:$skip {
    BeforeAll {
        Import-WgGatewayModule
        $script:manifest = $env:WGI_GATEWAY_MODULE ? $env:WGI_GATEWAY_MODULE : (Resolve-Path (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1')).Path
        $script:run = New-FleetTestRun -Prefix 'fh'
        $script:net = $run.Net; $script:fleet = $run.Fleet; $script:gw = $run.Gw; $script:pg = $run.Pg; $script:created = $run.Created
        $script:a = $null; $script:b = $null
        try {
            $script:lan = New-FleetLan -Network $net
            $nsA = New-WgTestNamespace -Network $net -Role 'ia'; $addrA = Add-FleetLanHost $lan $nsA 11
            $nsB = New-WgTestNamespace -Network $net -Role 'ib'; $addrB = Add-FleetLanHost $lan $nsB 12
            $script:nameA = "wgh$($net.RunId)a"; $script:nameB = "wgh$($net.RunId)b"
            $script:nextHost = 100
            # One gateway identity on 51820 everywhere; the mesh on 51821 (its endpoint: the instance's lan address).
            $instanceArgs = @{ Manifest = $manifest; Pg = $pg; Fleet = $fleet; SecretPath = $run.SecretPath; KeyPath = $run.KeyPath; Folder = $run.Dir; Port = 51820; MeshPort = 51821 }
            $script:a = Start-FleetInstance @instanceArgs -Name $nameA -Namespace $nsA -BindAddress $addrA
            $script:b = Start-FleetInstance @instanceArgs -Name $nameB -Namespace $nsB -BindAddress $addrB
            Connect-WgServer -Registry $pg.ConnectionString -Fleet $fleet -FleetSecretPath $run.SecretPath | Out-Null
        } catch {
            Stop-FleetInstance $script:a -Kill; Stop-FleetInstance $script:b -Kill
            Disconnect-WgServer; Remove-FleetPostgres $script:pg; Remove-WgTestNetwork $net
            throw
        }

        # A wireguard-go client (its own namespace, a lan host) whose only peer is the fleet at one instance's endpoint.
        function New-PinnedClient([string]$Role, [string]$Endpoint) {
            $kp = New-WgGoKeyPair
            $peer = Add-WgPeer -PublicKey $kp.PublicKey -Name $Role
            $addr = ($peer.AllowedIPs | Select-Object -First 1) -replace '/32$', '/24'
            $dev = New-WgGoDevice -Network $net -Role $Role -PrivateKey $kp.PrivateKey -Address $addr -InNamespace
            $null = Add-FleetLanHost $lan $dev.Namespace ($script:nextHost++)
            Add-WgGoPeer -Device $dev -PublicKey $created.PublicKey -AllowedIPs $gw.V4Net -Endpoint $Endpoint -PersistentKeepalive 1
            [pscustomobject]@{ Device = $dev; PublicKey = $kp.PublicKey; Address = ($peer.AllowedIPs | Select-Object -First 1) -replace '/32$', '' }
        }
        # Average RTT in ms of $Count pings, and how many came back.
        function Measure-PingRtt([string]$Namespace, [string]$Target, [int]$Count = 50) {
            $out = (Invoke-InNamespace $Namespace ping '-n', '-q', '-c', "$Count", '-i', '0.05', '-w', '30', $Target -AllowFailure) -join "`n"
            $rx = if ($out -match '(\d+) received') { [int]$Matches[1] } else { 0 }
            $avg = if ($out -match 'rtt min/avg/max/mdev = [\d.]+/([\d.]+)/') { [double]$Matches[1] } else { $null }
            [pscustomobject]@{ Received = $rx; AvgMs = $avg }
        }
    }

    AfterAll {
        Stop-FleetInstance $script:a; Stop-FleetInstance $script:b
        Disconnect-WgServer
        Remove-FleetPostgres $script:pg
        Remove-WgTestNetwork $script:net
    }

    It 'X on instance A pings Y on instance B and gets replies; Z on A too; RTTs measured' {
        $script:x = New-PinnedClient 'hx' $a.Endpoint
        $script:z = New-PinnedClient 'hz' $a.Endpoint
        $script:y = New-PinnedClient 'hy' $b.Endpoint
        foreach ($c in $x, $y, $z) { (Test-Ping -Namespace $c.Device.Namespace -Target $gw.V4 -Count 2 -Deadline 10).Success | Should -BeTrue }
        # Placement as the registry's live state says it (each instance reports every 5 s).
        Wait-WgCondition { (Get-WgPeer -PublicKey $x.PublicKey).Instance -eq $nameA -and (Get-WgPeer -PublicKey $y.PublicKey).Instance -eq $nameB } -TimeoutSeconds 20 | Should -BeTrue
        # The other instance's mesh learns Y's placement on its next report: allow two report intervals and a handshake.
        Wait-WgCondition { (Test-Ping -Namespace $x.Device.Namespace -Target $y.Address -Count 1 -Deadline 2).Success } -TimeoutSeconds 30 | Should -BeTrue
        $cross = Measure-PingRtt $x.Device.Namespace $y.Address
        $local = Measure-PingRtt $x.Device.Namespace $z.Address
        Write-Host "FIGURE fleet hub: ping RTT X->Y across instances avg $($cross.AvgMs) ms ($($cross.Received)/50), X->Z on one instance avg $($local.AvgMs) ms ($($local.Received)/50)"
        $cross.Received | Should -BeGreaterOrEqual 45
        $local.Received | Should -BeGreaterOrEqual 45
        # Y's session never moved: it is on B only, and X's on A only (no client was touched).
        (Get-UapiPeerKey $nameA) -contains $y.PublicKey | Should -BeTrue   # A knows Y (every instance serves every peer) ...
        (Get-WgGoPeerStat $y.Device).Endpoint | Should -Be $b.Endpoint
        (Get-WgPeer -PublicKey $y.PublicKey).Instance | Should -Be $nameB
    }

    It 'Y on B reaches X on A the other way' {
        (Test-Ping -Namespace $y.Device.Namespace -Target $x.Address -Count 5 -Deadline 10 -MinReceived 4).Success | Should -BeTrue
    }

    It 'client isolation set in this session (the registry) reaches the instances: X stops reaching Z, then reaches it again' {
        Set-WgServer -PeerIsolation -Confirm:$false
        (Get-WgServer).PeerIsolation | Should -BeTrue
        Wait-WgCondition { -not (Test-Ping -Namespace $x.Device.Namespace -Target $z.Address -Count 1 -Deadline 1).Success } -TimeoutSeconds 10 | Should -BeTrue
        # Only peer-to-peer is refused: the gateway itself still answers.
        (Test-Ping -Namespace $x.Device.Namespace -Target $gw.V4 -Count 2 -Deadline 5).Success | Should -BeTrue
        Set-WgServer -PeerIsolation:$false -Confirm:$false
        Wait-WgCondition { (Test-Ping -Namespace $x.Device.Namespace -Target $z.Address -Count 1 -Deadline 2).Success } -TimeoutSeconds 10 | Should -BeTrue
    }
}
