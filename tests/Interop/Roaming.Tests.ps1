# Roaming (issue 3, item 3): an authenticated packet from a new underlay address updates the peer's
# endpoint. Every underlay here is loopback, so a wireguard-go client with a live session roams in the
# two ways this topology allows, each while a ping stream runs:
# - it rebinds its UDP socket (`wg set <if> listen-port <new>`, twice): 127.0.0.1:<old> -> :<new>;
# - it re-points its peer at [::1]:<gateway port>: its packets now come from ::1, another address
#   and family, on the gateway's same dual-stack socket.
# The stream must go on (the gateway's replies follow the client) and Get-WgPeer must show the new
# endpoint. See docs/interop.md.

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

Describe 'Roaming: a wireguard-go client changes its underlay endpoint mid-ping' -Skip:$skip {
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
            Remove-WgGatewayTestRun -ServerName $serverName -Network $net
            throw
        }
    }
    AfterAll {
        Remove-WgGatewayTestRun -ServerName $serverName -Network $net
        Get-Module WireGuardGateway | Remove-Module -ErrorAction Ignore
    }

    It 'has a session and the gateway sees the client at its first port' {
        (Test-Ping $client.Namespace $gw.V4 -Count 3 -MinReceived 3 -Deadline 10).Success | Should -BeTrue
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
        (Test-Ping $client.Namespace $gw.V6 -Count 5 -MinReceived 5 -Interval 0.1).Success | Should -BeTrue
        (Get-GwPeer $key.PublicKey).LatestHandshake | Should -Be $hs
    }

    It 'the stream continues when the client moves to another underlay address (127.0.0.1 to ::1) mid-ping' {
        # The client points its peer at [::1]:<gateway port>: its packets now leave from ::1, a new
        # address (and family) for the gateway, reached on the same dual-stack socket.
        $port = $client.ListenPort
        $stream = Start-WgPingStream -Namespace $client.Namespace -Target $gw.V6 -Count 40 -Interval 0.1
        try {
            $rx = (Get-GwPeer $key.PublicKey).ReceivedBytes
            Wait-WgCondition { (Get-GwPeer $key.PublicKey).ReceivedBytes -gt $rx } -TimeoutSeconds 3 | Should -BeTrue
            Add-WgGoPeer -Device $client -PublicKey $server.PublicKey -AllowedIPs $gw.V4Net, $gw.V6Net -Endpoint "[::1]:$($server.ListenPort)"
            Wait-WgCondition { (Get-GwPeer $key.PublicKey).Endpoint -eq "[::1]:$port" } -TimeoutSeconds 3 |
                Should -BeTrue -Because "the gateway must learn [::1]:$port (it shows $((Get-GwPeer $key.PublicKey).Endpoint))"
            $r = Wait-WgPingStream $stream
        } finally { Stop-WgPingStream $stream }
        $r.Transmitted | Should -Be 40
        $r.Lost | Should -BeLessOrEqual 1 -Because "lost icmp_seq: $($r.LostSeq -join ',')"
        (Get-GwPeer $key.PublicKey).Endpoint | Should -Be "[::1]:$port"
        (Test-Ping $client.Namespace $gw.V4 -Count 3 -MinReceived 3 -Interval 0.1).Success | Should -BeTrue
    }
}
