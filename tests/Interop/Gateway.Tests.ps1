# Interop of OUR gateway (in-process, in this pwsh) with real wireguard-go clients, through the
# cmdlets of docs CMDLETS.md. The gateway listens on a free port; clients reach it over 127.0.0.1,
# their tunnel addresses live in namespaces this test makes (see WgInterop.psm1, docs/interop.md).
# Needs the module built (./build.ps1 Build); missing tools skip loudly, or fail under CI=true.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Gateway' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force

    function Get-GwPeer([string]$Key) {
        Get-WgPeer -Server $serverName | Where-Object PublicKey -EQ $Key
    }

    # True while something holds UDP port $Port on the IPv4 wildcard (a dual-stack [::] socket counts).
    function Test-UdpPortInUse([int]$Port) {
        $s = [System.Net.Sockets.Socket]::new('InterNetwork', 'Dgram', 'Udp')
        try { $s.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Any, $Port)); $false }
        catch [System.Net.Sockets.SocketException] { $true }
        finally { $s.Dispose() }
    }
}

Describe 'Interop prerequisites (gateway)' {
    It 'has wireguard-go, wg, ip, ping and root' -Skip:$skip {
        (Test-WgInteropPrerequisite).Missing | Should -BeNullOrEmpty
    }
}

Describe 'WireGuardGateway with wireguard-go clients' -Skip:$skip {
    BeforeAll {
        # WGI_GATEWAY_MODULE points the suite at another build of the module (any path Import-Module takes).
        $manifest = $env:WGI_GATEWAY_MODULE
        if (-not $manifest) {
            $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
            $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
            if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) {
                throw "WireGuardGateway is not built ($repoRoot/module/bin missing): run ./build.ps1 Build first"
            }
        }
        Import-Module $manifest -Force

        $net = New-WgTestNetwork
        $serverName = "gw$($net.RunId)"
        try {
            $gw = Get-WgTestAddress $net 1
            $addr = @{ a = Get-WgTestAddress $net 2; b = Get-WgTestAddress $net 3 }
            $keys = @{ a = New-WgGoKeyPair; b = New-WgGoKeyPair }
            # Egress None: hub only; nothing the clients send can leave for the host's networks.
            $server = Start-WgServer -Name $serverName -ListenPort 0 -Address $gw.V4Cidr, $gw.V6Cidr -Egress None
            $clients = @{}
            foreach ($r in 'a', 'b') {
                Add-WgPeer -Server $serverName -PublicKey $keys[$r].PublicKey -AllowedIPs $addr[$r].V4Host, $addr[$r].V6Host | Out-Null
                $clients[$r] = New-WgGoClient -Network $net -Role $r -PrivateKey $keys[$r].PrivateKey `
                    -Address $addr[$r].V4Cidr, $addr[$r].V6Cidr -PeerPublicKey $server.PublicKey `
                    -Endpoint "127.0.0.1:$($server.ListenPort)" -AllowedIPs $gw.V4Net, $gw.V6Net -PersistentKeepalive 25
            }
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

    It 'Start-WgServer -ListenPort 0 reports the real port, and holds it' {
        $server.State | Should -Be 'Running'
        $server.ListenPort | Should -BeGreaterThan 0
        $server.ListenPort | Should -BeLessOrEqual 65535
        Test-UdpPortInUse $server.ListenPort | Should -BeTrue
    }

    It 'client <_> completes a handshake within 10 s (Get-WgPeer LatestHandshake)' -ForEach 'a', 'b' {
        $key = $keys[$_].PublicKey
        Wait-WgCondition { $null -ne (Get-GwPeer $key).LatestHandshake } -TimeoutSeconds 10 | Should -BeTrue
        (Get-GwPeer $key).LatestHandshake | Should -BeOfType [DateTimeOffset]
        # wireguard-go agrees: it has a handshake with the gateway too.
        (Get-WgGoPeerStat $clients[$_]).LatestHandshake | Should -Not -BeNullOrEmpty
    }

    It 'Get-WgPeer shows client <_> at the endpoint the gateway sees (127.0.0.1:its port)' -ForEach 'a', 'b' {
        (Get-GwPeer $keys[$_].PublicKey).Endpoint | Should -Be "127.0.0.1:$($clients[$_].ListenPort)"
    }

    It 'client <_> pings the gateway tunnel address over IPv4 and IPv6' -ForEach 'a', 'b' {
        (Test-Ping $clients[$_].Namespace $gw.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients[$_].Namespace $gw.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
    }

    It 'clients ping each other through the hub over IPv4 and IPv6' {
        (Test-Ping $clients.a.Namespace $addr.b.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients.b.Namespace $addr.a.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients.a.Namespace $addr.b.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients.b.Namespace $addr.a.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
    }

    It 'Get-WgPeer byte counters are positive and grow after pings (client <_>)' -ForEach 'a', 'b' {
        $key = $keys[$_].PublicKey
        $before = Get-GwPeer $key
        $before.ReceivedBytes | Should -BeGreaterThan 0
        $before.SentBytes | Should -BeGreaterThan 0
        (Test-Ping $clients[$_].Namespace $gw.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        Wait-WgCondition {
            $now = Get-GwPeer $key
            $now.ReceivedBytes -gt $before.ReceivedBytes -and $now.SentBytes -gt $before.SentBytes
        } -TimeoutSeconds 5 | Should -BeTrue
    }

    It 'a ping to a tunnel address nobody holds gets no reply' {
        (Test-Ping $clients.a.Namespace (Get-WgTestAddress $net 99).V4 -Count 2 -Deadline 1).Success | Should -BeFalse
    }

    It 'Remove-WgPeer cuts client b off at once while client a keeps working' {
        # b has a live session right now: prove it, so the failure below is due to the removal.
        (Test-Ping $clients.b.Namespace $gw.V4 -Count 1 -Deadline 2).Success | Should -BeTrue
        Remove-WgPeer -Server $serverName -PublicKey $keys.b.PublicKey -Confirm:$false
        Get-GwPeer $keys.b.PublicKey | Should -BeNullOrEmpty
        $cut = Test-Ping $clients.b.Namespace $gw.V4 -Count 3 -Deadline 2
        $cut.Transmitted | Should -BeGreaterThan 0
        $cut.Received | Should -Be 0
        (Test-Ping $clients.b.Namespace $gw.V6 -Count 2 -Deadline 1).Received | Should -Be 0
        (Test-Ping $clients.a.Namespace $addr.b.V4 -Count 2 -Deadline 1).Received | Should -Be 0
        (Test-Ping $clients.a.Namespace $gw.V4 -Count 3 -MinReceived 3).Success | Should -BeTrue
        (Test-Ping $clients.a.Namespace $gw.V6 -Count 3 -MinReceived 3).Success | Should -BeTrue
    }

    It 'Stop-WgServer frees the UDP port (it can be bound again)' {
        $port = $server.ListenPort
        Stop-WgServer -Name $serverName -Confirm:$false
        (Get-WgServer -Name $serverName -ErrorAction Ignore | Where-Object State -EQ 'Running') | Should -BeNullOrEmpty
        $v4 = [System.Net.Sockets.Socket]::new('InterNetwork', 'Dgram', 'Udp')
        try { { $v4.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Any, $port)) } | Should -Not -Throw }
        finally { $v4.Dispose() }
        if ([System.Net.Sockets.Socket]::OSSupportsIPv6) {
            $v6 = [System.Net.Sockets.Socket]::new('InterNetworkV6', 'Dgram', 'Udp')
            try { { $v6.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::IPv6Any, $port)) } | Should -Not -Throw }
            finally { $v6.Dispose() }
        }
        # And the tunnel is really gone: client a gets no answer any more.
        (Test-Ping $clients.a.Namespace $gw.V4 -Count 2 -Deadline 1).Received | Should -Be 0
    }
}
