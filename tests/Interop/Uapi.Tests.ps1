# The UAPI our gateway serves, exercised with the real `wg` tool and with raw (also malformed)
# requests whose answers are compared with a real wireguard-go device given the same bytes.
# Names carry the run id (the `wg` tool only looks in /var/run/wireguard/NAME.sock).

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Uapi' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'UapiRaw.psm1') -Force
    $manifest = $env:WGI_GATEWAY_MODULE
    if (-not $manifest) {
        $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
        $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
        if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) { throw "WireGuardGateway is not built: run ./build.ps1 Build first" }
    }
    Import-Module $manifest -Force

    function ConvertTo-Hex([string]$Base64) { ([Convert]::FromBase64String($Base64) | ForEach-Object { $_.ToString('x2') }) -join '' }
    function Get-GwPeer([string]$Key) { Get-WgPeer -Server $name | Where-Object PublicKey -EQ $Key }
}

Describe 'Interop prerequisites (uapi)' {
    It 'has wireguard-go, wg, ip, ping and root' -Skip:$skip {
        (Test-WgInteropPrerequisite).Missing | Should -BeNullOrEmpty
    }
}

Describe 'The gateway serves the UAPI to wg' -Skip:$skip {
    BeforeAll {
        $net = New-WgTestNetwork
        $name = "gu$($net.RunId)"
        try {
            $server = Start-WgServer -Name $name -ListenPort 0 -Address "$($net.V4Prefix).1/24"
            $peerA = New-WgKey; $peerB = New-WgKey
            Add-WgPeer -Server $name -PublicKey $peerA.PublicKey -AllowedIPs "$($net.V4Prefix).2/32" -Name alpha | Out-Null
        } catch { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net; throw }
    }
    AfterAll { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net }

    It 'serves /var/run/wireguard/NAME.sock, owner-only (0600)' {
        $server.UapiPath | Should -Be "/var/run/wireguard/$name.sock"
        (Get-Item -LiteralPath $server.UapiPath).UnixFileMode | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
    }

    It 'wg show NAME lists the interface and the peers added by the cmdlets' {
        $out = (Invoke-WgNative wg 'show', $name) -join "`n"
        $out | Should -Match "interface: $name"
        $out | Should -Match ([regex]::Escape("public key: $($server.PublicKey)"))
        $out | Should -Match "listening port: $($server.ListenPort)"
        $out | Should -Match ([regex]::Escape("peer: $($peerA.PublicKey)"))
        $out | Should -Match ([regex]::Escape("allowed ips: $($net.V4Prefix).2/32"))
    }

    It 'wg show NAME dump has the interface line and one line per peer' {
        $lines = Invoke-WgNative wg 'show', $name, 'dump'
        $lines.Count | Should -Be 2
        ($lines[0] -split "`t")[1] | Should -Be $server.PublicKey
        ($lines[0] -split "`t")[2] | Should -Be "$($server.ListenPort)"
        $f = $lines[1] -split "`t"
        $f[0] | Should -Be $peerA.PublicKey
        $f[3] | Should -Be "$($net.V4Prefix).2/32"
    }

    It 'wg show reports a real client''s handshake, endpoint and transfer, and a preshared key' {
        $ck = New-WgGoKeyPair
        $psk = (Invoke-WgNative wg 'genpsk')[0].Trim()
        Add-WgPeer -Server $name -PublicKey $ck.PublicKey -AllowedIPs "$($net.V4Prefix).5/32" -PresharedKey $psk | Out-Null
        $cli = New-WgGoDevice -Network $net -Role cli -PrivateKey $ck.PrivateKey -Address "$($net.V4Prefix).5/24"
        Invoke-WgNative wg 'set', $cli.Name, 'peer', $server.PublicKey, 'preshared-key', '/dev/stdin', 'allowed-ips', "$($net.V4Prefix).0/24", 'endpoint', "127.0.0.1:$($server.ListenPort)" -InputText $psk | Out-Null
        (Test-Ping -Namespace $cli.Namespace -Target "$($net.V4Prefix).1" -Count 2 -Deadline 10).Success | Should -BeTrue
        $f = (Invoke-WgNative wg 'show', $name, 'dump') | Where-Object { $_.StartsWith($ck.PublicKey) } | ForEach-Object { $_ -split "`t" }
        $f[1] | Should -Be $psk
        $f[2] | Should -Be "127.0.0.1:$($cli.ListenPort)"
        [long]$f[4] | Should -BeGreaterThan ([DateTimeOffset]::UtcNow.ToUnixTimeSeconds() - 60)   # latest handshake
        [long]$f[5] | Should -BeGreaterThan 0   # received
        [long]$f[6] | Should -BeGreaterThan 0   # sent
        Remove-WgGoClient -Network $net -Device $cli
        Remove-WgPeer -Server $name -PublicKey $ck.PublicKey -Confirm:$false
    }

    It 'wg showconf NAME gives a config whose private key belongs to the server' {
        $conf = (Invoke-WgNative wg 'showconf', $name) -join "`n"
        $conf -match 'PrivateKey = (\S+)' | Should -BeTrue
        (Invoke-WgNative wg 'pubkey' -InputText $Matches[1])[0].Trim() | Should -Be $server.PublicKey
        $conf | Should -Match "ListenPort = $($server.ListenPort)"
    }

    It 'wg set NAME peer ... allowed-ips adds a peer that Get-WgPeer sees at once' {
        Invoke-WgNative wg 'set', $name, 'peer', $peerB.PublicKey, 'allowed-ips', "$($net.V4Prefix).3/32", 'endpoint', '127.0.0.1:40001', 'persistent-keepalive', '25' | Out-Null
        $p = Get-GwPeer $peerB.PublicKey
        $p | Should -Not -BeNullOrEmpty
        @($p.AllowedIPs) | Should -Be @("$($net.V4Prefix).3/32")
        "$($p.Endpoint)" | Should -Be '127.0.0.1:40001'
        $p.PersistentKeepalive | Should -Be 25
    }

    It 'wg set NAME peer ... allowed-ips replaces the ranges of an existing peer (name kept)' {
        Invoke-WgNative wg 'set', $name, 'peer', $peerA.PublicKey, 'allowed-ips', "$($net.V4Prefix).20/32,$($net.V4Prefix).21/32" | Out-Null
        $p = Get-GwPeer $peerA.PublicKey
        @($p.AllowedIPs) | Sort-Object | Should -Be @("$($net.V4Prefix).20/32", "$($net.V4Prefix).21/32")
        $p.Name | Should -Be 'alpha'
    }

    It 'refuses (errno, wg fails) an allowed IP another peer owns: the gateway policy applies to wg too' {
        $r = Invoke-WgNative wg 'set', $name, 'peer', $peerB.PublicKey, 'allowed-ips', "$($net.V4Prefix).20/32" -AllowFailure
        $LASTEXITCODE | Should -Not -Be 0
        @((Get-GwPeer $peerA.PublicKey).AllowedIPs) | Should -Contain "$($net.V4Prefix).20/32"
    }

    It 'wg set NAME peer ... remove removes it from Get-WgPeer' {
        Invoke-WgNative wg 'set', $name, 'peer', $peerB.PublicKey, 'remove' | Out-Null
        Get-GwPeer $peerB.PublicKey | Should -BeNullOrEmpty
        (Get-WgServer $name).PeerCount | Should -Be 1
    }

    It 'wg syncconf NAME file makes the peers exactly those of the file' {
        $priv = ((Invoke-WgNative wg 'showconf', $name) -join "`n") -replace '(?s).*PrivateKey = (\S+).*', '$1'
        $c = New-WgKey
        $file = Join-Path $net.TempDir 'sync.conf'
        @(
            '[Interface]', "PrivateKey = $priv", '',
            '[Peer]', "PublicKey = $($peerA.PublicKey)", "AllowedIPs = $($net.V4Prefix).30/32", '',
            '[Peer]', "PublicKey = $($c.PublicKey)", "AllowedIPs = $($net.V4Prefix).31/32", 'PersistentKeepalive = 5'
        ) | Set-Content -LiteralPath $file
        Invoke-WgNative wg 'syncconf', $name, $file | Out-Null
        $peers = Get-WgPeer -Server $name
        @($peers.PublicKey) | Sort-Object | Should -Be (@($peerA.PublicKey, $c.PublicKey) | Sort-Object)
        @((Get-GwPeer $peerA.PublicKey).AllowedIPs) | Should -Be @("$($net.V4Prefix).30/32")
        (Get-GwPeer $c.PublicKey).PersistentKeepalive | Should -Be 5
        (Get-WgServer $name).PublicKey | Should -Be $server.PublicKey
    }

    It 'wg set NAME listen-port rebinds the UDP port, reported by Get-WgServer' {
        $probe = [System.Net.Sockets.UdpClient]::new(0); $port = $probe.Client.LocalEndPoint.Port; $probe.Dispose()
        Invoke-WgNative wg 'set', $name, 'listen-port', "$port" | Out-Null
        (Get-WgServer $name).ListenPort | Should -Be $port
        (Invoke-WgNative wg 'show', $name, 'listen-port')[0] | Should -Be "$port"
    }

    It 'wg set NAME fwmark sets SO_MARK on the UDP socket (seen by ss), shown by wg' {
        Invoke-WgNative wg 'set', $name, 'fwmark', '0x51' | Out-Null
        (Invoke-WgNative wg 'show', $name, 'fwmark')[0] | Should -Be '0x51'
        $port = (Get-WgServer $name).ListenPort
        $sock = (Invoke-WgNative ss '-uaen') -join "`n" -split "(?m)^(?=UNCONN)" | Where-Object { $_ -match ":$port\s" }
        $sock | Should -Not -BeNullOrEmpty
        $sock | Should -Match 'fwmark:0x51'
    }

    It 'wg set NAME private-key replaces the key: Get-WgServer shows the new public key, peers stay' {
        $before = @((Get-WgPeer -Server $name).PublicKey)
        $k = New-WgGoKeyPair
        Invoke-WgNative wg 'set', $name, 'private-key', '/dev/stdin' -InputText $k.PrivateKey | Out-Null
        (Get-WgServer $name).PublicKey | Should -Be $k.PublicKey
        (Invoke-WgNative wg 'show', $name, 'public-key')[0] | Should -Be $k.PublicKey
        @((Get-WgPeer -Server $name).PublicKey) | Should -Be $before
    }

    It 'serves many clients at once, and a silent client does not hold up the others' {
        $silent = [System.Net.Sockets.Socket]::new('Unix', 'Stream', 'Unspecified')
        $held = foreach ($i in 1..20) { $s = [System.Net.Sockets.Socket]::new('Unix', 'Stream', 'Unspecified'); $s.Connect([System.Net.Sockets.UnixDomainSocketEndPoint]::new($server.UapiPath)); $s }
        try {
            $silent.Connect([System.Net.Sockets.UnixDomainSocketEndPoint]::new($server.UapiPath))
            # All 20 are connected before any writes: each is served while the others (and the silent one) stay open.
            foreach ($s in $held) { [void]$s.Send([System.Text.Encoding]::ASCII.GetBytes("get=1`n`n")) }
            foreach ($s in $held) { (Read-UapiAnswer -Socket $s -TimeoutMs 3000).Errno | Should -Be 0 }
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            (Invoke-WgNative wg 'show', $name, 'public-key')[0] | Should -Be (Get-WgServer $name).PublicKey
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 2
        } finally { $silent.Dispose(); foreach ($s in $held) { $s.Dispose() } }
    }
}

Describe 'Malformed UAPI input: the same answers as wireguard-go' -Skip:$skip {
    BeforeAll {
        $net = New-WgTestNetwork
        $name = "gm$($net.RunId)"
        try {
            $ref = New-WgGoDevice -Network $net -Role ref -PrivateKey (New-WgGoKeyPair).PrivateKey -Address "$($net.V4Prefix).9/24"
            $server = Start-WgServer -Name $name -ListenPort 0 -Address "$($net.V4Prefix).1/24"
        } catch { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net; throw }
        $pk = ConvertTo-Hex (New-WgKey).PublicKey
    }
    AfterAll { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net }

    It 'answers <Case> like wireguard-go' -ForEach @(
        @{ Case = 'get'; Request = "get=1`n`n" }
        @{ Case = 'get with a trailing character'; Request = "get=1`nx" }
        @{ Case = 'bad hex private_key'; Request = "set=1`nprivate_key=zz`n`n" }
        @{ Case = 'unknown device key'; Request = "set=1`nfoo=bar`n`n" }
        @{ Case = 'a line without ='; Request = "set=1`nnoequals`n`n" }
        @{ Case = 'empty key'; Request = "set=1`n=1`n`n" }
        @{ Case = 'unknown peer key'; Request = "set=1`npublic_key=PK`nbogus=1`n`n" }
        @{ Case = 'short public_key'; Request = "set=1`npublic_key=abcd`n`n" }
        @{ Case = 'upper-case hex public_key'; Request = "set=1`npublic_key=PKUPPER`n`n" }
        @{ Case = 'listen_port out of range'; Request = "set=1`nlisten_port=70000`n`n" }
        @{ Case = 'fwmark not a number'; Request = "set=1`nfwmark=abc`n`n" }
        @{ Case = 'replace_peers=false'; Request = "set=1`nreplace_peers=false`n`n" }
        @{ Case = 'device key after a peer'; Request = "set=1`npublic_key=PK`nlisten_port=1`n`n" }
        @{ Case = 'allowed_ip without length'; Request = "set=1`npublic_key=PK`nallowed_ip=10.0.0.1`n`n" }
        @{ Case = 'allowed_ip /33'; Request = "set=1`npublic_key=PK`nallowed_ip=10.0.0.0/33`n`n" }
        @{ Case = 'allowed_ip with a leading-zero octet'; Request = "set=1`npublic_key=PK`nallowed_ip=010.0.0.1/32`n`n" }
        @{ Case = 'endpoint with a host name'; Request = "set=1`npublic_key=PK`nendpoint=example.com:51820`n`n" }
        @{ Case = 'IPv6 endpoint without brackets'; Request = "set=1`npublic_key=PK`nendpoint=::1:51820`n`n" }
        @{ Case = 'bracketed IPv6 endpoint'; Request = "set=1`npublic_key=PK`nendpoint=[::1]:51820`n`n" }
        @{ Case = 'protocol_version=2'; Request = "set=1`npublic_key=PK`nprotocol_version=2`n`n" }
        @{ Case = 'negative keepalive'; Request = "set=1`npublic_key=PK`npersistent_keepalive_interval=-1`n`n" }
        @{ Case = 'keepalive with a plus sign'; Request = "set=1`npublic_key=PK`npersistent_keepalive_interval=+5`n`n" }
        @{ Case = 'short preshared_key'; Request = "set=1`npublic_key=PK`npreshared_key=123`n`n" }
        @{ Case = 'update_only=yes'; Request = "set=1`npublic_key=PK`nupdate_only=yes`n`n" }
        @{ Case = 'a 70000-byte line'; Request = "set=1`nfoo=" + ('a' * 70000) + "`n`n" }
        @{ Case = 'an unknown operation'; Request = "bogus=1`n`n" }
        @{ Case = 'CRLF after the operation'; Request = "set=1`r`n`n" }
        @{ Case = 'a set truncated by end of input'; Request = "set=1`npublic_key=PK`nallowed_ip=10.77.0.9/32"; HalfClose = $true }
        @{ Case = 'a get truncated by end of input'; Request = "get=1`n"; HalfClose = $true }
    ) {
        $bytes = $Request.Replace('PKUPPER', $pk.ToUpper()).Replace('PK', $pk)
        $theirs = Send-UapiRaw -Path $ref.UapiSocket -Request $bytes -HalfClose:([bool]$HalfClose) -TimeoutMs 2000
        $ours = Send-UapiRaw -Path $server.UapiPath -Request $bytes -HalfClose:([bool]$HalfClose) -TimeoutMs 2000
        $theirs.TimedOut | Should -BeFalse -Because 'wireguard-go answers or closes at once'
        $ours.TimedOut | Should -BeFalse
        $ours.Errno | Should -Be $theirs.Errno
        $ours.Closed | Should -Be $theirs.Closed
    }

    It 'keeps the lines before a bad one, as wireguard-go does' {
        $key = New-WgKey
        $r = Send-UapiRaw -Path $server.UapiPath -Request "set=1`npublic_key=$(ConvertTo-Hex $key.PublicKey)`nallowed_ip=$($net.V4Prefix).40/32`nbogus=1`n`n"
        $r.Errno | Should -Be -22
        @((Get-WgPeer -Server $name | Where-Object PublicKey -EQ $key.PublicKey).AllowedIPs) | Should -Be @("$($net.V4Prefix).40/32")
    }

    It 'still serves wg after all of that' {
        (Invoke-WgNative wg 'show', $name, 'public-key')[0] | Should -Be $server.PublicKey
    }
}

Describe 'UAPI socket lifecycle' -Skip:$skip {
    BeforeAll { $net = New-WgTestNetwork }
    AfterAll { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net }

    It 'refuses an -UapiPath that a live listener holds, with a clear error' {
        $path = Join-Path $net.TempDir 'live.sock'
        $a = Start-WgServer -Name "la$($net.RunId)" -ListenPort 0 -UapiPath $path
        $a.UapiPath | Should -Be $path
        Start-WgServer -Name "lb$($net.RunId)" -ListenPort 0 -UapiPath $path -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'UapiSocketInUse*'
        "$($ev[0])" | Should -BeLike "*$path*in use*"
        (Send-UapiRaw -Path $path -Request "get=1`n`n").Errno | Should -Be 0   # the first one still serves
    }

    It 'replaces a stale socket file left by a crash' {
        $path = Join-Path $net.TempDir 'stale.sock'
        # A socket file nobody listens on: bind one, keep a hard link to it, close it (.NET unlinks its own name).
        $bound = Join-Path $net.TempDir 'bound.sock'
        $s = [System.Net.Sockets.Socket]::new('Unix', 'Stream', 'Unspecified')
        $s.Bind([System.Net.Sockets.UnixDomainSocketEndPoint]::new($bound))
        Invoke-WgNative ln $bound, $path | Out-Null
        $s.Dispose()
        Test-Path -LiteralPath $path | Should -BeTrue
        $srv = Start-WgServer -Name "st$($net.RunId)" -ListenPort 0 -UapiPath $path
        (Send-UapiRaw -Path $path -Request "get=1`n`n").Text | Should -Match "listen_port=$($srv.ListenPort)\n"
    }

    It 'removes the socket on Stop-WgServer' {
        $path = Join-Path $net.TempDir 'stop.sock'
        $srv = Start-WgServer -Name "sp$($net.RunId)" -ListenPort 0 -UapiPath $path
        Test-Path -LiteralPath $path | Should -BeTrue
        Stop-WgServer $srv.Name
        Test-Path -LiteralPath $path | Should -BeFalse
    }
}
