# Self-check of the interop harness, and the reference topology for the benchmarks: wireguard-go as
# a hub (kernel forwarding inside its namespace) with two wireguard-go clients. Nothing here needs our
# module; if this fails, the harness or the machine is at fault, not the gateway.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    # Outside CI a missing tool skips loudly; under CI=true nothing is skipped, so the run fails.
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Harness' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
}

Describe 'Interop prerequisites (harness)' {
    It 'has wireguard-go, wg, ip, ping and root' -Skip:$skip {
        (Test-WgInteropPrerequisite).Missing | Should -BeNullOrEmpty
    }
}

Describe 'wireguard-go hub reference topology' -Skip:$skip {
    BeforeAll {
        $net = New-WgTestNetwork
        try {
            $keys = @{ h = New-WgGoKeyPair; a = New-WgGoKeyPair; b = New-WgGoKeyPair }
            $addr = @{ h = Get-WgTestAddress $net 1; a = Get-WgTestAddress $net 2; b = Get-WgTestAddress $net 3 }
            $hub = New-WgGoDevice -Network $net -Role h -PrivateKey $keys.h.PrivateKey `
                -Address $addr.h.V4Cidr, $addr.h.V6Cidr -Forwarding
            foreach ($r in 'a', 'b') {
                Add-WgGoPeer -Device $hub -PublicKey $keys[$r].PublicKey -AllowedIPs $addr[$r].V4Host, $addr[$r].V6Host
            }
            $clients = @{}
            foreach ($r in 'a', 'b') {
                # Persistent keepalive makes each client handshake at once, so the hub learns its endpoint.
                $clients[$r] = New-WgGoClient -Network $net -Role $r -PrivateKey $keys[$r].PrivateKey `
                    -Address $addr[$r].V4Cidr, $addr[$r].V6Cidr -PeerPublicKey $keys.h.PublicKey `
                    -Endpoint "127.0.0.1:$($hub.ListenPort)" -AllowedIPs $addr.h.V4Net, $addr.h.V6Net -PersistentKeepalive 25
            }
        } catch {
            Remove-WgTestNetwork $net
            throw
        }
    }
    AfterAll { Remove-WgTestNetwork $net }

    It 'client <_> completes a handshake with the hub within 10 s' -ForEach 'a', 'b' {
        $key = $keys[$_].PublicKey
        Wait-WgCondition { $null -ne (Get-WgGoPeerStat $hub | Where-Object PublicKey -EQ $key).LatestHandshake } -TimeoutSeconds 10 |
            Should -BeTrue
    }

    It 'the hub sees client <_> at 127.0.0.1 and its own listen port' -ForEach 'a', 'b' {
        (Get-WgGoPeerStat $hub | Where-Object PublicKey -EQ $keys[$_].PublicKey).Endpoint |
            Should -Be "127.0.0.1:$($clients[$_].ListenPort)"
    }

    It 'client <_> pings the hub tunnel address over IPv4 and IPv6' -ForEach 'a', 'b' {
        (Test-Ping $clients[$_].Namespace $addr.h.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients[$_].Namespace $addr.h.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
    }

    It 'clients ping each other through the hub over IPv4 and IPv6' {
        (Test-Ping $clients.a.Namespace $addr.b.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients.b.Namespace $addr.a.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients.a.Namespace $addr.b.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients.b.Namespace $addr.a.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
    }

    It 'reports loss: a tunnel address nobody holds gets no reply' {
        $r = Test-Ping $clients.a.Namespace (Get-WgTestAddress $net 99).V4 -Count 2 -Deadline 1
        $r.Success | Should -BeFalse
        $r.Transmitted | Should -BeGreaterThan 0
    }

    It 'hub transfer counters grow with traffic' {
        $before = (Get-WgGoPeerStat $hub | Where-Object PublicKey -EQ $keys.a.PublicKey)
        (Test-Ping $clients.a.Namespace $addr.h.V4 -Count 3).Success | Should -BeTrue
        Wait-WgCondition {
            $now = Get-WgGoPeerStat $hub | Where-Object PublicKey -EQ $keys.a.PublicKey
            $now.ReceivedBytes -gt $before.ReceivedBytes -and $now.SentBytes -gt $before.SentBytes
        } -TimeoutSeconds 5 | Should -BeTrue
    }
}

Describe 'harness cleanup' -Skip:$skip {
    It 'removes processes, UAPI sockets and namespaces' {
        $net = New-WgTestNetwork
        try {
            $k = New-WgGoKeyPair
            $dev = New-WgGoDevice -Network $net -Role c -PrivateKey $k.PrivateKey -Address (Get-WgTestAddress $net 5).V4Cidr
            @(& ip netns list) -match "^$($dev.Namespace)\b" | Should -Not -BeNullOrEmpty
            Test-Path $dev.UapiSocket | Should -BeTrue
        } finally {
            Remove-WgTestNetwork $net
        }
        $dev.Process.HasExited | Should -BeTrue
        Test-Path $dev.UapiSocket | Should -BeFalse
        @(& ip netns list) -match "^$($dev.Namespace)\b" | Should -BeNullOrEmpty
        Test-Path $net.TempDir | Should -BeFalse
    }

    It 'cleans up a device whose setup failed half-way' {
        $net = New-WgTestNetwork
        $k = New-WgGoKeyPair
        try {
            { New-WgGoDevice -Network $net -Role x -PrivateKey $k.PrivateKey -Address 'not-an-address' } | Should -Throw
            $net.Devices.Count | Should -Be 1    # the process was started and recorded before the failure
        } finally {
            Remove-WgTestNetwork $net
        }
        @(& ip netns list) -match "^wgi$($net.RunId)" | Should -BeNullOrEmpty
        Get-Process -Name wireguard-go -ErrorAction Ignore |
            Where-Object { $_.CommandLine -match "wi$($net.RunId)" } | Should -BeNullOrEmpty
    }
}
