# -Backend Uapi: the cmdlets manage a real wireguard-go device over its UAPI socket, and a real
# wireguard-go client handshakes with that device and pings its tunnel address. Everything lives in
# namespaces this run makes (see WgInterop.psm1, docs/interop.md); UDP only on 127.0.0.1.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'UapiBackend' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $manifest = $env:WGI_GATEWAY_MODULE
    if (-not $manifest) {
        $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
        $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
        if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) { throw "WireGuardGateway is not built: run ./build.ps1 Build first" }
    }
    Import-Module $manifest -Force
}

Describe 'Interop prerequisites (uapi backend)' {
    It 'has wireguard-go, wg, ip, ping and root' -Skip:$skip {
        (Test-WgInteropPrerequisite).Missing | Should -BeNullOrEmpty
    }
}

Describe 'Start-WgServer -Backend Uapi manages a wireguard-go device' -Skip:$skip {
    BeforeAll {
        $net = New-WgTestNetwork
        $name = "ub$($net.RunId)"
        try {
            $gw = Get-WgTestAddress $net 1
            $ca = Get-WgTestAddress $net 2
            $devKeys = New-WgGoKeyPair
            $clientKeys = New-WgGoKeyPair
            # The external device: a wireguard-go hub whose TUN (with the gateway address) is in its own namespace.
            $dev = New-WgGoDevice -Network $net -Role dev -PrivateKey $devKeys.PrivateKey -Address $gw.V4Cidr
            $server = Start-WgServer -Name $name -Backend Uapi -UapiPath $dev.UapiSocket -Address $gw.V4Cidr
            $client = New-WgGoClient -Network $net -Role cli -PrivateKey $clientKeys.PrivateKey -Address $ca.V4Cidr `
                -PeerPublicKey $devKeys.PublicKey -Endpoint "127.0.0.1:$($dev.ListenPort)" -AllowedIPs $gw.V4Net -PersistentKeepalive 25
        } catch { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net; throw }
    }
    AfterAll { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net }

    It 'reports the device: its key and port are kept when not given' {
        $server.Backend | Should -Be 'Uapi'
        $server.PublicKey | Should -Be $devKeys.PublicKey
        $server.ListenPort | Should -Be $dev.ListenPort
        $server.UapiPath | Should -Be $dev.UapiSocket
    }

    It 'Add-WgPeer configures the device (seen by wg show)' {
        $p = Add-WgPeer -Server $name -PublicKey $clientKeys.PublicKey -AllowedIPs $ca.V4Host -Name cli
        $p.Name | Should -Be 'cli'
        $peers = Get-WgGoPeerStat -Device $dev
        @($peers.PublicKey) | Should -Be @($clientKeys.PublicKey)
        @($peers[0].AllowedIPs) | Should -Be @($ca.V4Host)
    }

    It 'a wireguard-go client handshakes with the device and pings its tunnel address' {
        (Test-Ping -Namespace $client.Namespace -Target $gw.V4 -Count 3 -Deadline 10).Success | Should -BeTrue
        Wait-WgCondition { (Get-WgPeer -Server $name -Name cli).LatestHandshake } -TimeoutSeconds 10 | Should -BeTrue
        $p = Get-WgPeer -Server $name -Name cli
        "$($p.Endpoint)" | Should -Match '^127\.0\.0\.1:\d+$'
        $p.ReceivedBytes | Should -BeGreaterThan 0
        $p.SentBytes | Should -BeGreaterThan 0
    }

    It 'Set-WgPeer changes the peer on the device' {
        Set-WgPeer -Server $name -PublicKey $clientKeys.PublicKey -PersistentKeepalive 17
        (Invoke-WgNative wg 'show', $dev.Name, 'persistent-keepalive') -join "`n" | Should -Match "$([regex]::Escape($clientKeys.PublicKey))\s+17"
        (Get-WgPeer -Server $name -Name cli).PersistentKeepalive | Should -Be 17
    }

    It 'refuses overlapping AllowedIPs before touching the device (the facade policy)' {
        $other = New-WgKey
        Add-WgPeer -Server $name -PublicKey $other.PublicKey -AllowedIPs $ca.V4Host -ErrorVariable ev -ErrorAction SilentlyContinue | Out-Null
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'AllowedIPsOverlap*'
        @((Get-WgGoPeerStat -Device $dev).PublicKey) | Should -Not -Contain $other.PublicKey
    }

    It 'Remove-WgPeer removes the peer from the device and cuts the client off' {
        Remove-WgPeer -Server $name -PublicKey $clientKeys.PublicKey -Confirm:$false
        @(Get-WgGoPeerStat -Device $dev) | Should -BeNullOrEmpty
        (Test-Ping -Namespace $client.Namespace -Target $gw.V4 -Count 2 -Deadline 3).Received | Should -Be 0
    }

    It 'Stop-WgServer stops managing and leaves the device running' {
        # The client still holds its old session, which the device dropped with the peer: with the
        # client's endpoint and a keepalive, the device itself starts a fresh handshake at once.
        Add-WgPeer -Server $name -PublicKey $clientKeys.PublicKey -AllowedIPs $ca.V4Host -Endpoint "127.0.0.1:$($client.ListenPort)" -PersistentKeepalive 1 | Out-Null
        Stop-WgServer $name
        Get-WgServer | Where-Object Name -EQ $name | Should -BeNullOrEmpty
        $dev.Process.HasExited | Should -BeFalse
        Test-Path -LiteralPath $dev.UapiSocket | Should -BeTrue
        @((Get-WgGoPeerStat -Device $dev).PublicKey) | Should -Be @($clientKeys.PublicKey)
        (Test-Ping -Namespace $client.Namespace -Target $gw.V4 -Count 3 -Deadline 10).Success | Should -BeTrue
    }

    It 'a second server adopts the peers the device already has' {
        $again = Start-WgServer -Name "$name" -Backend Uapi -UapiPath $dev.UapiSocket -Address $gw.V4Cidr
        $again.PeerCount | Should -Be 1
        (Get-WgPeer -Server $name).PublicKey | Should -Be $clientKeys.PublicKey
        Stop-WgServer $name
    }

    It 'fails clearly when no device listens on -UapiPath' {
        Start-WgServer -Name "nx$($net.RunId)" -Backend Uapi -UapiPath (Join-Path $net.TempDir 'none.sock') -ErrorVariable ev -ErrorAction SilentlyContinue | Out-Null
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'UapiDeviceUnavailable*'
    }
}
