# The gateway as initiator (issue 3, item 5): a peer added with -Endpoint and -PersistentKeepalive is
# contacted by the gateway first, wireguard-go being the responder. The wireguard-go client has the
# gateway as a peer but NO endpoint for it, so it cannot send anything on its own: any handshake it
# shows was started by the gateway, and the gateway's address is something it can only have learned
# from the gateway's authenticated initiation.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Initiator' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    function Get-GwPeer([string]$Key) { Get-WgPeer -Server $serverName | Where-Object PublicKey -EQ $Key }
}

Describe 'The gateway initiates to a wireguard-go responder' -Skip:$skip {
    BeforeAll {
        Import-WgGatewayModule
        $net = New-WgTestNetwork
        $serverName = "gi$($net.RunId)"
        try {
            $gw = Get-WgTestAddress $net 1
            $addr = Get-WgTestAddress $net 2
            $key = New-WgGoKeyPair
            $server = Start-WgServer -Name $serverName -ListenPort 0 -Address $gw.V4Cidr, $gw.V6Cidr -Egress None
            # The client knows the gateway's key and tunnel ranges, not where it is.
            $client = New-WgGoDevice -Network $net -Role i -PrivateKey $key.PrivateKey -Address $addr.V4Cidr, $addr.V6Cidr
            Add-WgGoPeer -Device $client -PublicKey $server.PublicKey -AllowedIPs $gw.V4Net, $gw.V6Net
            $before = Get-WgGoPeerStat $client
            $keepalive = 3
            Add-WgPeer -Server $serverName -PublicKey $key.PublicKey -AllowedIPs $addr.V4Host, $addr.V6Host `
                -Endpoint "127.0.0.1:$($client.ListenPort)" -PersistentKeepalive $keepalive | Out-Null
        } catch {
            Remove-WgGatewayTestRun -ServerName $serverName -Network $net
            throw
        }
    }
    AfterAll {
        Remove-WgGatewayTestRun -ServerName $serverName -Network $net
        Get-Module WireGuardGateway | Remove-Module -ErrorAction Ignore
    }

    It 'before the gateway knew it, the client had no endpoint for the gateway and had sent nothing' {
        $before.Endpoint | Should -BeNullOrEmpty
        $before.SentBytes | Should -Be 0
        $before.LatestHandshake | Should -BeNullOrEmpty
    }

    It 'wireguard-go shows a handshake within 10 s, and learned the gateway''s address from it' {
        # wireguard-go as responder records the handshake only when the gateway's first transport
        # packet (the keepalive that confirms the session) arrives: this also checks that one is sent.
        Wait-WgCondition { $null -ne (Get-WgGoPeerStat $client).LatestHandshake } -TimeoutSeconds 10 | Should -BeTrue
        $c = Get-WgGoPeerStat $client
        $c.Endpoint | Should -Be "127.0.0.1:$($server.ListenPort)"
        $c.ReceivedBytes | Should -BeGreaterThan 0
    }

    It 'Get-WgPeer shows the handshake, the configured endpoint and keepalive' {
        $p = Get-GwPeer $key.PublicKey
        $p.LatestHandshake | Should -Not -BeNullOrEmpty
        $p.Endpoint | Should -Be "127.0.0.1:$($client.ListenPort)"
        $p.PersistentKeepalive | Should -Be $keepalive
    }

    It 'the session carries pings from the client over IPv4 and IPv6' {
        (Test-Ping $client.Namespace $gw.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $client.Namespace $gw.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
    }

    It 'persistent keepalives keep arriving at the client while nobody sends anything' {
        # Two keepalive intervals of silence on the client side: its received bytes still grow.
        $rx = (Get-WgGoPeerStat $client).ReceivedBytes
        Wait-WgCondition { (Get-WgGoPeerStat $client).ReceivedBytes -gt $rx } -TimeoutSeconds ($keepalive * 2 + 1) | Should -BeTrue
        $rx2 = (Get-WgGoPeerStat $client).ReceivedBytes
        Wait-WgCondition { (Get-WgGoPeerStat $client).ReceivedBytes -gt $rx2 } -TimeoutSeconds ($keepalive * 2 + 1) | Should -BeTrue
    }
}
