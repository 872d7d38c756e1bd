# DoS protection of OUR gateway under a handshake flood, with a real wireguard-go client (issue 3, item 2).
# tools/Flood floods the gateway on loopback for at most 10 s with initiations that carry a VALID mac1
# (real Noise messages from unknown keys, from 64 source ports), and relays one wireguard-go client so
# the test sees its handshake on the wire: the first initiation is answered with a cookie reply, the
# client's retry carries mac2 and is answered before the client retransmits (Rekey-Timeout, 5 s).
# Meanwhile the cmdlets keep answering. The round itself is FloodRound.psm1's; its durations (how long
# the mac2 retry waited, the slowest Get-WgPeer) are figures of bench/e2e/flood-client.ps1, not thresholds.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Flood' -Missing $prereq.Missing }
}

Describe 'Gateway under a valid-mac1 handshake flood' -Skip:$skip {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'FloodRound.psm1') -Force
        Import-WgGatewayModule
        $floodDll = Initialize-WgFloodTool
        # WireGuard whitepaper section 6.1 / wireguard-go device/constants.go: a handshake initiation is
        # retransmitted after Rekey-Timeout (5 s, plus up to 333 ms of jitter) without a response.
        $rekeyTimeoutMs = 5000
    }
    AfterAll {
        Get-Module WireGuardGateway | Remove-Module -ErrorAction Ignore
    }

    It 'the client completes its handshake via a cookie reply and a mac2 retry, and cmdlets stay responsive' {
        $round = Invoke-WgFloodRound -FloodDll $floodDll -Seconds 10
        Format-WgFloodRound $round | Write-Host
        $r = $round.Flood
        $round.UnderLoad | Should -BeTrue -Because 'the flood must put the gateway under load (1,000 cookie replies within 5 s)'

        # The handshake happened, during the flood.
        $round.HandshakeSeenAtSeconds | Should -Not -BeNullOrEmpty
        $round.FloodOnAtHandshake | Should -BeTrue
        $round.ClientLatestHandshake | Should -Not -BeNullOrEmpty
        # Through the cookie exchange: refused first (no mac2 yet), cookie reply, retry with mac2...
        $r.relay.firstInitiationHadMac2 | Should -BeFalse
        $r.relay.cookieReplies | Should -BeGreaterOrEqual 1
        $r.relay.initiationsWithMac2 | Should -BeGreaterOrEqual 1
        $r.relay.responses | Should -BeGreaterOrEqual 1
        # ...answered before the client's next retransmission: no initiation crossed the relay between the
        # first mac2 one and the response, and the response came within Rekey-Timeout of that initiation.
        $r.relay.initiationsAfterMac2BeforeResponse | Should -Be 0 -Because 'the mac2 retry must be answered before the client retransmits'
        ($r.relay.firstResponseAtMs - $r.relay.firstMac2AtMs) | Should -BeGreaterOrEqual 0
        ($r.relay.firstResponseAtMs - $r.relay.firstMac2AtMs) | Should -BeLessThan $rekeyTimeoutMs
        # The gateway answered the flood with cookies (the flooder received some; the gateway sent at least as many).
        $cookies = $round.After.CookieRepliesSent - $round.Before.CookieRepliesSent
        $r.cookieRepliesReceived | Should -BeGreaterThan 0
        $cookies | Should -BeGreaterOrEqual $r.cookieRepliesReceived
        # And the cmdlets answered throughout (every call found the peer); how fast is a benchmark figure.
        $round.GetWgPeerCalls | Should -BeGreaterThan 10
        $round.GetWgPeerAnswered | Should -Be $round.GetWgPeerCalls
    }
}
