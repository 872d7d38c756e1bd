# Roaming (issue 3, item 3): an authenticated packet from a new underlay address updates the peer's
# endpoint. A wireguard-go client with a live session rebinds its UDP socket to another port
# (`wg set <if> listen-port <new>`) while a ping stream runs: from the gateway's point of view it
# moved from 127.0.0.1:<old> to 127.0.0.1:<new>. With every underlay on loopback a port change is the
# roam this topology can make (see docs/interop.md). The stream must go on, Get-WgPeer must show the
# new endpoint, and the gateway's replies must follow the client there.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Roaming' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    function Get-GwPeer([string]$Key) { Get-WgPeer -Server $serverName | Where-Object PublicKey -EQ $Key }
}

Describe 'Roaming: a wireguard-go client changes its source port mid-ping' -Skip:$skip {
    BeforeAll {
        Import-WgGatewayModule
        $net = New-WgTestNetwork
        $serverName = "gr$($net.RunId)"
        try {
            $gw = Get-WgTestAddress $net 1
            $addr = Get-WgTestAddress $net 2
            $key = New-WgGoKeyPair
            $server = Start-WgServer -Name $serverName -ListenPort 0 -Address $gw.V4Cidr, $gw.V6Cidr -Egress None
            Add-WgPeer -Server $serverName -PublicKey $key.PublicKey -AllowedIPs $addr.V4Host, $addr.V6Host | Out-Null
            # No persistent keepalive: every packet the client sends after the rebind is ping traffic.
            $client = New-WgGoClient -Network $net -Role r -PrivateKey $key.PrivateKey -Address $addr.V4Cidr, $addr.V6Cidr `
                -PeerPublicKey $server.PublicKey -Endpoint "127.0.0.1:$($server.ListenPort)" -AllowedIPs $gw.V4Net, $gw.V6Net
        } catch {
            Get-WgServer -Name $serverName -ErrorAction Ignore | Stop-WgServer -Confirm:$false -ErrorAction Ignore
            Remove-WgTestNetwork $net
            throw
        }
    }
    AfterAll {
        Get-WgServer -Name $serverName -ErrorAction Ignore | Stop-WgServer -Confirm:$false -ErrorAction Ignore
        Remove-WgTestNetwork $net
        Get-Module WireGuardGateway | Remove-Module -ErrorAction Ignore
    }

    It 'has a session and the gateway sees the client at its first port' {
        (Test-Ping $client.Namespace $gw.V4 -Count 3 -MinReceived 3 -Deadline 10).Received | Should -Be 3
        (Get-GwPeer $key.PublicKey).Endpoint | Should -Be "127.0.0.1:$($client.ListenPort)"
    }

    It 'the ping stream continues across two port changes and Get-WgPeer follows each one' {
        $ports = [System.Collections.Generic.List[int]]::new()
        $ports.Add($client.ListenPort)
        # 60 pings at 0.1 s: about 6 s, the two rebinds fall in the middle of it.
        $stream = Start-WgPingStream -Namespace $client.Namespace -Target $gw.V4 -Count 60 -Interval 0.1
        try {
            foreach ($round in 1, 2) {
                $sent = (Get-GwPeer $key.PublicKey).ReceivedBytes
                Wait-WgCondition { (Get-GwPeer $key.PublicKey).ReceivedBytes -gt $sent } -TimeoutSeconds 3 | Should -BeTrue
                $new = Set-WgGoListenPort -Device $client
                $new | Should -Not -BeIn $ports
                $ports.Add($new)
                Wait-WgCondition { (Get-GwPeer $key.PublicKey).Endpoint -eq "127.0.0.1:$new" } -TimeoutSeconds 3 |
                    Should -BeTrue -Because "the gateway must learn 127.0.0.1:$new from the first authenticated packet (it shows $((Get-GwPeer $key.PublicKey).Endpoint))"
            }
            $r = Wait-WgPingStream $stream
        } finally { Stop-WgPingStream $stream }
        $r.Transmitted | Should -Be 60
        $r.Lost | Should -BeLessOrEqual 1 -Because "lost icmp_seq: $($r.LostSeq -join ',')"
        (Get-GwPeer $key.PublicKey).Endpoint | Should -Be "127.0.0.1:$($ports[-1])"
    }

    It 'after the roam the session is the same one (no new handshake was needed) and IPv6 works too' {
        $hs = (Get-GwPeer $key.PublicKey).LatestHandshake
        $hs | Should -Not -BeNullOrEmpty
        (Test-Ping $client.Namespace $gw.V6 -Count 5 -MinReceived 5 -Interval 0.1).Received | Should -Be 5
        (Get-GwPeer $key.PublicKey).LatestHandshake | Should -Be $hs
    }
}
