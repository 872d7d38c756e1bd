# The traffic policy with real wireguard-go clients (docs/policy.md): two clients of OUR gateway (in this
# pwsh, -Egress None: hub only) in namespaces this test makes, a TCP echo service in client b's namespace on
# its tunnel address. Client isolation on and off at runtime, an ACL that opens one port of b to a and
# refuses the rest, and replies of an allowed flow let through where isolation refuses b's own flows.
# Needs the module built (./build.ps1 Build); missing tools skip loudly, or fail under CI=true.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    foreach ($tool in 'socat', 'python3', 'iperf3') {
        if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) { $prereq = [pscustomobject]@{ Ok = $false; Missing = @($prereq.Missing) + $tool; IsCI = $prereq.IsCI } }
    }
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Policy' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force

    # Connects from a namespace, sends a line and reads it back; one JSON line: ok, echoed, error (errno name), elapsed.
    $script:ProbePy = @'
import errno, json, socket, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t = time.monotonic()
try:
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(b'policy\n')
    data = s.recv(64)
    print(json.dumps({'ok': True, 'echoed': data == b'policy\n', 'elapsed': time.monotonic() - t}))
except OSError as e:
    name = errno.errorcode.get(e.errno, 'timeout' if isinstance(e, socket.timeout) else str(e))
    print(json.dumps({'ok': False, 'error': name, 'elapsed': time.monotonic() - t}))
'@

    function Invoke-Probe([string]$Namespace, [string]$Address, [int]$Port) {
        (Invoke-InNamespace $Namespace python3 '-c', $ProbePy, $Address, "$Port", '5') | Select-Object -Last 1 | ConvertFrom-Json
    }

    function Start-NamespaceService([string]$Namespace, [string]$FilePath, [string[]]$ArgumentList) {
        $psi = [System.Diagnostics.ProcessStartInfo]::new('ip')
        foreach ($a in @('netns', 'exec', $Namespace, $FilePath) + $ArgumentList) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $p = [System.Diagnostics.Process]::Start($psi)
        $script:Services.Add($p)
    }

    # One bounded iperf3 run (5 s, the first second omitted: slow start and the full bucket); the receiver's rate in Mbit/s.
    function Measure-Iperf([string]$Namespace, [string]$Server, [switch]$Reverse) {
        $argv = @('-c', $Server, '-p', '7201', '-t', '5', '-O', '1', '-J', '--connect-timeout', '5000')
        if ($Reverse) { $argv += '-R' }
        $json = (Invoke-InNamespace $Namespace timeout (@('30', 'iperf3') + $argv)) -join "`n" | ConvertFrom-Json
        $json.end.sum_received.bits_per_second / 1e6
    }

    function Start-EchoService([string]$Namespace, [string]$Address, [int]$Port) {
        Start-NamespaceService $Namespace 'socat' "TCP-LISTEN:$Port,bind=$Address,fork,reuseaddr", 'PIPE'
        if (-not (Wait-WgCondition { ((Invoke-InNamespace $Namespace ss '-Htln' -AllowFailure) -join "`n").Contains("$Address`:$Port") } -TimeoutSeconds 10)) {
            throw "the echo service on $Address`:$Port did not start listening within 10 s"
        }
    }
}

Describe 'Interop prerequisites (policy)' {
    It 'has wireguard-go, wg, ip, ping, socat, python3 and root' -Skip:$skip {
        (Test-WgInteropPrerequisite).Missing | Should -BeNullOrEmpty
        foreach ($t in 'socat', 'python3') { Get-Command $t -CommandType Application -ErrorAction Ignore | Should -Not -BeNullOrEmpty -Because "$t is needed" }
    }
}

Describe 'Client isolation and ACLs with wireguard-go clients' -Skip:$skip {
    BeforeAll {
        $manifest = $env:WGI_GATEWAY_MODULE
        if (-not $manifest) {
            $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
            $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
            if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) { throw "WireGuardGateway is not built ($repoRoot/module/bin missing): run ./build.ps1 Build first" }
        }
        Import-Module $manifest -Force
        $script:Services = [System.Collections.Generic.List[System.Diagnostics.Process]]::new()
        $net = New-WgTestNetwork
        $serverName = "po$($net.RunId)"
        try {
            $gw = Get-WgTestAddress $net 1
            $addr = @{ a = Get-WgTestAddress $net 2; b = Get-WgTestAddress $net 3; c = Get-WgTestAddress $net 4 }
            $keys = @{ a = New-WgGoKeyPair; b = New-WgGoKeyPair; c = New-WgGoKeyPair }
            $conf = Join-Path $net.TempDir 'gw.conf'
            $server = Start-WgServer -Name $serverName -ListenPort 0 -Address $gw.V4Cidr -Egress None -UapiPath (Join-Path $net.TempDir 'gw.sock') -ConfigPath $conf
            $clients = @{}
            foreach ($r in 'a', 'b', 'c') {
                Add-WgPeer -Server $serverName -PublicKey $keys[$r].PublicKey -AllowedIPs $addr[$r].V4Host | Out-Null
                $clients[$r] = New-WgGoClient -Network $net -Role $r -PrivateKey $keys[$r].PrivateKey -Address $addr[$r].V4Cidr `
                    -PeerPublicKey $server.PublicKey -Endpoint "127.0.0.1:$($server.ListenPort)" -AllowedIPs $gw.V4Net -PersistentKeepalive 25
            }
            Start-EchoService $clients.b.Namespace $addr.b.V4 7101
            Start-EchoService $clients.b.Namespace $addr.b.V4 7102
            Start-EchoService $clients.a.Namespace $addr.a.V4 7103
            Start-NamespaceService $clients.b.Namespace 'iperf3' '-s', '-B', $addr.b.V4, '-p', '7201'
            if (-not (Wait-WgCondition { ((Invoke-InNamespace $clients.b.Namespace ss '-Htln' -AllowFailure) -join "`n").Contains("$($addr.b.V4):7201") } -TimeoutSeconds 10)) { throw 'iperf3 -s did not start' }
            foreach ($r in 'a', 'b', 'c') {
                if (-not (Wait-WgCondition { (Test-Ping $clients[$r].Namespace $gw.V4 -Count 1 -Deadline 2).Success } -TimeoutSeconds 15)) { throw "client $r did not reach the gateway" }
            }
        } catch {
            foreach ($p in $Services) { try { $p.Kill($true) } catch { } }
            Get-WgServer -Name $serverName -ErrorAction Ignore | Stop-WgServer -Confirm:$false -ErrorAction Ignore
            Remove-WgTestNetwork $net
            throw
        }
        function Get-PolicyDrops { (Get-WgEngineDevice).Counters.Policy }
        function Get-WgEngineDevice {
            # The engine behind the running server (it is restarted by the quota case): internal members, read by reflection.
            $s = Get-WgServer -Name $serverName
            $vpn = $s.GetType().GetProperty('Server', [System.Reflection.BindingFlags]'NonPublic,Instance').GetValue($s)
            $vpn.GetType().GetField('_backend', [System.Reflection.BindingFlags]'NonPublic,Instance').GetValue($vpn).Device
        }
    }
    AfterAll {
        foreach ($p in $Services) { try { if (-not $p.HasExited) { $p.Kill($true); [void]$p.WaitForExit(5000) } } catch { } }
        Get-WgServer -Name $serverName -ErrorAction Ignore | Stop-WgServer -Confirm:$false -ErrorAction Ignore
        Remove-WgTestNetwork $net
        Get-Module WireGuardGateway | Remove-Module -ErrorAction Ignore
    }

    It 'lets the clients reach each other while isolation is off' {
        (Invoke-Probe $clients.a.Namespace $addr.b.V4 7101).echoed | Should -BeTrue
        (Invoke-Probe $clients.b.Namespace $addr.a.V4 7103).echoed | Should -BeTrue
        (Test-Ping $clients.a.Namespace $addr.b.V4 -Count 2 -MinReceived 2).Success | Should -BeTrue
    }

    It 'refuses peer-to-peer at once with isolation on (ICMP prohibited, counted) while the gateway stays reachable' {
        Set-WgServer -Name $serverName -PeerIsolation
        $before = Get-PolicyDrops
        $r = Invoke-Probe $clients.a.Namespace $addr.b.V4 7101
        $r.ok | Should -BeFalse
        $r.error | Should -Be 'EHOSTUNREACH'
        $r.elapsed | Should -BeLessThan 2
        (Test-Ping $clients.a.Namespace $addr.b.V4 -Count 2 -Deadline 2).Received | Should -Be 0
        (Get-PolicyDrops) | Should -BeGreaterThan $before
        (Test-Ping $clients.a.Namespace $gw.V4 -Count 2 -MinReceived 2).Success | Should -BeTrue
    }

    It 'lets a through to the one port its ACL allows, with b''s replies, while b may not open its own flow to a' {
        Set-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey -Acl "allow $($addr.b.V4)/32 tcp 7101"
        (Invoke-Probe $clients.a.Namespace $addr.b.V4 7101).echoed | Should -BeTrue      # the replies come back through isolation
        (Invoke-Probe $clients.a.Namespace $addr.b.V4 7102).error | Should -Be 'EHOSTUNREACH'
        (Invoke-Probe $clients.b.Namespace $addr.a.V4 7103).error | Should -Be 'EHOSTUNREACH'
    }

    It 'with isolation off, an ACL that allows one port of b and denies the rest of b' {
        Set-WgServer -Name $serverName -PeerIsolation:$false
        Set-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey -Acl "allow $($addr.b.V4)/32 tcp 7101", "deny $($addr.b.V4)/32"
        (Invoke-Probe $clients.a.Namespace $addr.b.V4 7101).echoed | Should -BeTrue
        $r = Invoke-Probe $clients.a.Namespace $addr.b.V4 7102
        $r.error | Should -Be 'EHOSTUNREACH'
        $r.elapsed | Should -BeLessThan 2
        (Test-Ping $clients.a.Namespace $addr.b.V4 -Count 2 -Deadline 2).Received | Should -Be 0
        (Invoke-Probe $clients.b.Namespace $addr.a.V4 7103).echoed | Should -BeTrue      # b has no rules
    }

    It 'opens everything again when the ACL is cleared' {
        Set-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey -Acl @()
        (Invoke-Probe $clients.a.Namespace $addr.b.V4 7102).echoed | Should -BeTrue
        (Test-Ping $clients.a.Namespace $addr.b.V4 -Count 2 -MinReceived 2).Success | Should -BeTrue
    }

    It 'limits a to 20 Mbit/s both ways (iperf3 within 15 %) while c, unlimited, is not held to it' {
        Set-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey -UploadLimitMbps 20 -DownloadLimitMbps 20
        (Get-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey).UploadLimitMbps | Should -Be 20
        $up = Measure-Iperf $clients.a.Namespace $addr.b.V4
        $down = Measure-Iperf $clients.a.Namespace $addr.b.V4 -Reverse
        $free = Measure-Iperf $clients.c.Namespace $addr.b.V4
        Write-Host ("Rate limit 20 Mbit/s: a upload {0:N1}, a download {1:N1}, unlimited c {2:N1} Mbit/s" -f $up, $down, $free)
        $up | Should -BeGreaterOrEqual 17
        $up | Should -BeLessOrEqual 23
        $down | Should -BeGreaterOrEqual 17
        $down | Should -BeLessOrEqual 23
        $free | Should -BeGreaterThan 30
        (Get-WgEngineDevice).Counters.RateLimitedData | Should -BeGreaterThan 0
        Set-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey -UploadLimitMbps 0 -DownloadLimitMbps 0
        (Get-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey).UploadLimitMbps | Should -BeNullOrEmpty
    }

    It 'disables a mid-transfer at its quota (DisabledReason QuotaExceeded), keeps it so across a restart, and Enable-WgPeer brings it back' {
        Set-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey -QuotaBytes 3MB -QuotaPeriod Total
        # 20 MB offered, 3 MB allowed: iperf3 stalls or fails once the gateway cuts a off; bounded by timeout.
        $argv = @('15', 'iperf3', '-c', $addr.b.V4, '-p', '7201', '-n', '20M', '-J', '--connect-timeout', '5000')
        $out = (Invoke-InNamespace $clients.a.Namespace timeout $argv -AllowFailure) -join "`n"
        # The engine cuts a at once; the gateway records the disable a moment later (off the packet thread).
        Wait-WgCondition { -not (Get-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey).Enabled } -TimeoutSeconds 10 | Should -BeTrue -Because "iperf3 said: $out"
        $p = Get-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey
        $p.DisabledReason | Should -Be 'QuotaExceeded'
        $p.QuotaUsedBytes | Should -BeGreaterOrEqual 3MB
        $sent = try { ($out | ConvertFrom-Json).end.sum_received.bytes } catch { 0 }
        [long]$sent | Should -BeLessThan 20MB
        (Test-Ping $clients.a.Namespace $gw.V4 -Count 2 -Deadline 2).Received | Should -Be 0
        (Get-Content -Raw -LiteralPath $conf) | Should -Match '(?m)^#~ #! DisabledReason = QuotaExceeded$'

        Stop-WgServer -Name $serverName -Confirm:$false
        Start-WgServer -Name $serverName -ConfigPath $conf -Egress None -UapiPath (Join-Path $net.TempDir 'gw2.sock') | Out-Null
        $p = Get-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey
        $p.Enabled | Should -BeFalse
        $p.DisabledReason | Should -Be 'QuotaExceeded'
        (Test-Ping $clients.a.Namespace $gw.V4 -Count 2 -Deadline 2).Received | Should -Be 0

        Enable-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey
        (Get-WgPeer -Server $serverName -PublicKey $keys.a.PublicKey).DisabledReason | Should -BeNullOrEmpty
        Wait-WgCondition { (Test-Ping $clients.a.Namespace $gw.V4 -Count 1 -Deadline 2).Success } -TimeoutSeconds 30 | Should -BeTrue
    }
}
