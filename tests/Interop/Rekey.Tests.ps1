# The long interop test (issue 3, item 6; about 2.5 minutes): a continuous ping from a wireguard-go
# client across its 120 s rekey. wireguard-go, as the initiator of the session, starts a new handshake
# on the first packet it sends once the session is older than Rekey-After-Time (120 s); the gateway
# is the responder and must switch over without dropping the stream. At most one ping may be lost.
# The other half of item 6 (a silent peer's keys are erased after 3 x Reject-After-Time) runs under a
# fake clock in xunit instead of 9 real minutes: see docs/interop.md.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Rekey' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    function Get-GwPeer([string]$Key) { Get-WgPeer -Server $serverName | Where-Object PublicKey -EQ $Key }
}

Describe 'Continuous ping across a 120 s rekey with wireguard-go' -Skip:$skip {
    BeforeAll {
        Import-WgGatewayModule
        $net = New-WgTestNetwork
        $serverName = "gk$($net.RunId)"
        try {
            $gw = Get-WgTestAddress $net 1
            $addr = Get-WgTestAddress $net 2
            $key = New-WgGoKeyPair
            $server = Start-WgServer -Name $serverName -ListenPort 0 -Address $gw.V4Cidr, $gw.V6Cidr -Egress None
            Add-WgPeer -Server $serverName -PublicKey $key.PublicKey -AllowedIPs $addr.V4Host, $addr.V6Host | Out-Null
            # No persistent keepalive: the ping stream alone drives the session and its rekey.
            $client = New-WgGoClient -Network $net -Role k -PrivateKey $key.PrivateKey -Address $addr.V4Cidr, $addr.V6Cidr `
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

    It 'pings every 0.5 s for 135 s: the client rekeys after 120 s, at most one ping is lost, Get-WgPeer shows the newer handshake' {
        # The first session, initiated by the client.
        (Test-Ping $client.Namespace $gw.V4 -Count 1 -Deadline 10).Success | Should -BeTrue
        $first = (Get-GwPeer $key.PublicKey).LatestHandshake
        $first | Should -Not -BeNullOrEmpty
        $firstClient = (Get-WgGoPeerStat $client).LatestHandshake
        $firstClient | Should -Not -BeNullOrEmpty

        $stream = Start-WgPingStream -Namespace $client.Namespace -Target $gw.V4 -Count 270 -Interval 0.5
        try {
            # The rekey must land while the stream runs (120 s after the first handshake, plus slack).
            $rekeyed = Wait-WgCondition { (Get-GwPeer $key.PublicKey).LatestHandshake -gt $first } -TimeoutSeconds 134 -IntervalMilliseconds 500
            $r = Wait-WgPingStream $stream
        } finally { Stop-WgPingStream $stream }

        $rekeyed | Should -BeTrue -Because 'wireguard-go starts a new handshake once its session is 120 s old'
        $r.Transmitted | Should -Be 270
        $r.Lost | Should -BeLessOrEqual 1 -Because "lost icmp_seq: $($r.LostSeq -join ',')"

        $second = (Get-GwPeer $key.PublicKey).LatestHandshake
        Write-Host ("rekey: new handshake {0:n1} s after the first; pings {1}/{2} answered, lost icmp_seq [{3}]" -f
            ($second - $first).TotalSeconds, $r.Received, $r.Transmitted, ($r.LostSeq -join ','))
        ($second - $first).TotalSeconds | Should -BeGreaterOrEqual 115 -Because 'no extra handshake before Rekey-After-Time'
        # wireguard-go agrees that there is a newer session.
        (Get-WgGoPeerStat $client).LatestHandshake | Should -BeGreaterThan $firstClient
        # And the new session carries traffic in both families.
        (Test-Ping $client.Namespace $gw.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $client.Namespace $gw.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
    }
}
