# The management API v1 against a real host process: every peer and server operation with the
# cmdlets' semantics and ErrorIds, client provisioning, bad input (nothing changed, the gateway
# unaffected), limits (body size, stalled bodies, concurrent requests), the OpenAPI document, and
# HTTPS with bearer tokens (scopes, revocation, constant-time check, failed attempts rate-limited).

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    $reason = Get-HostSkipReason
    $skip = $null -ne $reason -and $env:CI -ne 'true'
    if ($skip) { Write-Host "SKIPPED: host suite (Api): $reason" -ForegroundColor Yellow }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    if ($reason = Get-HostSkipReason) { throw "host suite cannot run: $reason" }

    $script:dir = New-HostTestDir 'api'
    $script:name = New-HostGatewayName
    $script:api = Join-Path $dir 'run/api.sock'
    $script:uapi = Join-Path $dir "$name.sock"
    $script:conf = Join-Path $dir "$name.conf"
    $script:tokens = Join-Path $dir 'tokens.json'
    $script:cert = New-TestCertificate $dir
    $script:httpsPort = Get-FreeTcpPort
    $script:base = "https://127.0.0.1:$httpsPort"
    $script:hostProc = Start-WgTestHost -Dir $dir -Arguments @(
        $conf, '--Gateways:0:ListenPort=0', "--Gateways:0:UapiPath=$uapi", "--Api:UnixSocket=$api",
        '--Api:MaxRequestBodyBytes=65536', '--Api:MaxConcurrentRequests=2', '--Api:BodyGraceSeconds=3', '--Api:MinBodyBytesPerSecond=100',
        "--Api:Https:Url=$base", "--Api:Https:CertificatePath=$($cert.CertPath)", "--Api:Https:KeyPath=$($cert.KeyPath)",
        "--Api:Https:TokenStore=$tokens", '--Api:Https:FailedAttemptsPerMinute=3')
    if (-not (Wait-WgTestHostReady $hostProc $api)) { throw "host did not start: $(Get-WgTestHostLog $hostProc)" }

    function Api([string] $Method, [string] $Path, $Body) {
        $p = @{ Socket = $api; Method = $Method; Path = $Path }
        if ($null -ne $Body) { $p.Body = ($Body -is [string]) ? $Body : ($Body | ConvertTo-Json -Depth 5 -Compress) }
        Invoke-HostApi @p
    }
    $script:peers = "/v1/servers/$name/peers"

    # A request whose body stops after its first bytes: the socket stays open until disposed.
    function Open-StalledRequest {
        $s = [Net.Sockets.Socket]::new('Unix', 'Stream', 'Unspecified')
        $s.Connect([Net.Sockets.UnixDomainSocketEndPoint]::new($api))
        $head = "POST $peers HTTP/1.1`r`nHost: wghost`r`nContent-Type: application/json`r`nContent-Length: 1000`r`n`r`n{`"publicKey`":"
        [void]$s.Send([Text.Encoding]::ASCII.GetBytes($head))
        $s
    }
    function Read-Answer($Socket, [int] $Seconds) {
        $Socket.ReceiveTimeout = $Seconds * 1000
        $buf = [byte[]]::new(8192)
        try { $n = $Socket.Receive($buf) } catch [Net.Sockets.SocketException] { return '' }
        [Text.Encoding]::ASCII.GetString($buf, 0, $n)
    }
}

AfterAll {
    if ($hostProc) { Stop-WgTestHost $hostProc 'TERM' | Out-Null; Remove-WgTestHost $hostProc }
    if ($dir) { Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue }
}

Describe 'Management API v1 over the unix socket' -Skip:$skip {
    It 'lists and gets the servers as Get-WgServer shows them' {
        $r = Api GET '/v1/servers'
        $r.Status | Should -Be 200
        $s = @($r.Json) | Where-Object name -eq $name
        $s | Should -Not -BeNullOrEmpty
        (Get-UapiText $uapi) | Should -Match "listen_port=$($s.listenPort)\b"
        $s.address | Should -Be @('10.8.0.1/24')
        $s.configPath | Should -Be $conf
        $r.Body | Should -Not -Match 'privateKey'
        (Api GET "/v1/servers/$name").Json.publicKey | Should -Be $s.publicKey
        $missing = Api GET '/v1/servers/nosuchgw'
        $missing.Status | Should -Be 404
        $missing.Json.errorId | Should -Be 'WgServerNotFound'
    }

    It 'adds a peer with an allocated address, in the engine and on disk before the answer' {
        $key = New-TestPublicKey
        $r = Api POST $peers @{ publicKey = $key; name = 'alice'; persistentKeepalive = 25 }
        $r.Status | Should -Be 201
        $r.Json.allowedIPs | Should -HaveCount 1
        $r.Json.allowedIPs[0] | Should -Match '^10\.8\.0\.\d+/32$'
        $r.Json.name | Should -Be 'alice'
        (Get-Content -Raw $conf) | Should -Match ([regex]::Escape("PublicKey = $key"))
        (Get-UapiText $uapi) | Should -Match "public_key=$(ConvertTo-Hex $key)"
        $again = Api POST $peers @{ publicKey = $key }
        $again.Status | Should -Be 409
        $again.Json.errorId | Should -Be 'PeerAlreadyExists'
    }

    It 'gets, filters, sets, disables, enables and removes a peer with the cmdlets'' ids' {
        $key = New-TestPublicKey
        (Api POST $peers @{ publicKey = $key; name = 'bob-laptop'; allowedIPs = @('10.8.0.200/32') }).Status | Should -Be 201
        $seg = ConvertTo-KeySegment $key
        (Api GET "$peers/$seg").Json.name | Should -Be 'bob-laptop'
        (Api GET "$peers/$([uri]::EscapeDataString($key))").Json.publicKey | Should -Be $key   # standard base64, escaped
        @((Api GET "$peers`?name=bob-*").Json).publicKey | Should -Be @($key)
        $set = Api PATCH "$peers/$seg" @{ name = 'bob-desktop'; allowedIPs = @('10.8.0.201/32', '192.168.77.0/24') }
        $set.Status | Should -Be 200
        $set.Json.allowedIPs | Should -Be @('10.8.0.201/32', '192.168.77.0/24')
        $overlap = Api PATCH "$peers/$seg" @{ allowedIPs = @('10.8.0.1/32') }
        $overlap.Status | Should -Be 400
        $overlap.Json.errorId | Should -Be 'AllowedIPsOverlap'
        $d = Api POST "$peers/$seg/disable"
        $d.Json.changed | Should -BeTrue
        $d.Json.peer.enabled | Should -BeFalse
        (Get-UapiText $uapi) | Should -Not -Match "public_key=$(ConvertTo-Hex $key)"
        (Api POST "$peers/$seg/disable").Json.changed | Should -BeFalse
        @((Api GET "$peers`?enabled=false").Json).publicKey | Should -Contain $key
        (Api POST "$peers/$seg/enable").Json.peer.enabled | Should -BeTrue
        (Get-UapiText $uapi) | Should -Match "public_key=$(ConvertTo-Hex $key)"
        (Api DELETE "$peers/$seg").Status | Should -Be 204
        $gone = Api GET "$peers/$seg"
        $gone.Status | Should -Be 404
        $gone.Json.errorId | Should -Be 'PeerNotFound'
        (Api DELETE "$peers/$seg").Json.errorId | Should -Be 'PeerNotFound'
        (Get-Content -Raw $conf) | Should -Not -Match ([regex]::Escape($key))
    }

    It 'adds a batch with one config write, each item succeeding or failing on its own' {
        $a = New-TestPublicKey; $b = New-TestPublicKey
        $r = Api POST "$peers/batch" @{ peers = @(@{ publicKey = $a; name = 'batch-a' }, @{ publicKey = $a }, @{ publicKey = 'not-a-key' }, @{ publicKey = $b; allowedIPs = @('10.8.0.300/32') }) }
        $r.Status | Should -Be 200
        $items = @($r.Json)
        $items | Should -HaveCount 4
        $items[0].peer.publicKey | Should -Be $a
        $items[1].error.errorId | Should -Be 'PeerAlreadyExists'
        $items[2].error.errorId | Should -Be 'InvalidKey'
        $items[3].error.errorId | Should -Be 'InvalidCidr'
        (Api GET "$peers/$(ConvertTo-KeySegment $b)").Status | Should -Be 404
    }

    It 'sets the server''s listen port, refusing a bad one with its id' {
        $bad = Api PATCH "/v1/servers/$name" @{ listenPort = 70000 }
        $bad.Status | Should -Be 400
        $bad.Json.errorId | Should -Be 'InvalidListenPort'
        $port = (Get-FreeTcpPort)
        $r = Api PATCH "/v1/servers/$name" @{ listenPort = $port }
        $r.Status | Should -Be 200
        $r.Json.listenPort | Should -Be $port
        (Get-UapiText $uapi) | Should -Match "listen_port=$port\b"
    }

    It 'refuses <Case> with <Status> <ErrorId> and changes nothing' -ForEach @(
        @{ Case = 'malformed JSON'; Body = '{"publicKey": '; Status = 400; ErrorId = 'InvalidJson' }
        @{ Case = 'an unknown field'; Body = '{"publicKey":"KEY","admin":true}'; Status = 400; ErrorId = 'UnknownJsonField' }
        @{ Case = 'a wrong type'; Body = '{"publicKey":"KEY","persistentKeepalive":"25"}'; Status = 400; ErrorId = 'InvalidJson' }
        @{ Case = 'a missing field'; Body = '{"name":"x"}'; Status = 400; ErrorId = 'MissingJsonField' }
        @{ Case = 'a bad key'; Body = '{"publicKey":"AAAA"}'; Status = 400; ErrorId = 'InvalidKey' }
        @{ Case = 'a bad CIDR'; Body = '{"publicKey":"KEY","allowedIPs":["10.8.0.5/40"]}'; Status = 400; ErrorId = 'InvalidCidr' }
        @{ Case = 'a bad endpoint'; Body = '{"publicKey":"KEY","endpoint":"nowhere"}'; Status = 400; ErrorId = 'InvalidEndpoint' }
        @{ Case = 'a body that is not JSON'; Body = 'publicKey=KEY'; ContentType = 'text/plain'; Status = 415; ErrorId = 'UnsupportedMediaType' }
        @{ Case = 'an oversize body'; Body = ('{"publicKey":"KEY","name":"' + ('x' * 70000) + '"}'); Status = 413; ErrorId = 'RequestBodyTooLarge' }
    ) {
        $before = Get-Content -Raw $conf
        $count = @((Api GET $peers).Json).Count
        $p = @{ Socket = $api; Method = 'POST'; Path = $peers; Body = $Body.Replace('KEY', (New-TestPublicKey)) }
        if ($ContentType) { $p.ContentType = $ContentType }
        $r = Invoke-HostApi @p
        $r.Status | Should -Be $Status
        $r.Json.errorId | Should -Be $ErrorId
        $r.Json.message | Should -Not -BeNullOrEmpty
        Get-Content -Raw $conf | Should -BeExactly $before
        @((Api GET $peers).Json).Count | Should -Be $count
    }

    It 'answers an unknown path and a wrong method with JSON errors' {
        $r = Api GET '/v1/nothing-here'
        $r.Status | Should -Be 404
        $r.Json.errorId | Should -Be 'NotFound'
        $m = Api PUT $peers '{}'
        $m.Status | Should -Be 405
        $m.Json.errorId | Should -Be 'MethodNotAllowed'
    }

    It 'gives a stalled body 408 RequestTimeout, adds nothing, and keeps serving' {
        $count = @((Api GET $peers).Json).Count
        $s = Open-StalledRequest
        try { $answer = Read-Answer $s 30 } finally { $s.Dispose() }
        $answer | Should -Match '^HTTP/1\.1 408'
        $answer | Should -Match '"errorId":"RequestTimeout"'
        @((Api GET $peers).Json).Count | Should -Be $count
        (Api GET '/readyz').Status | Should -Be 200
    }

    It 'answers 429 TooManyRequests beyond the concurrent request limit, and serves again after' {
        $stalled = @(Open-StalledRequest; Open-StalledRequest)   # both hold a slot while their bodies trickle
        try {
            $limited = $null
            Wait-Until { $script:last = Api GET '/v1/servers'; $script:last.Status -eq 429 } -Seconds 3 | Should -BeTrue -Because 'two stalled requests fill the limit of 2'
            $script:last.Json.errorId | Should -Be 'TooManyRequests'
        } finally { $stalled | ForEach-Object { $_.Dispose() } }
        Wait-Until { (Api GET '/v1/servers').Status -eq 200 } -Seconds 10 | Should -BeTrue
    }

    It 'provisions a client once: its private key only in this answer, wg-quick text and QR codes that match' {
        $r = Api POST "/v1/servers/$name/clients" @{ name = 'carol-phone'; endpoint = 'vpn.example.com'; dns = @('10.8.0.1'); withPresharedKey = $true; qr = @('png', 'svg') }
        $r.Status | Should -Be 201
        $c = $r.Json
        $server = (Api GET "/v1/servers/$name").Json
        $c.endpoint | Should -Be "vpn.example.com:$($server.listenPort)"
        $c.config | Should -Match "(?m)^Address = $([regex]::Escape($c.address[0]))$"
        $c.config | Should -Match "(?m)^PublicKey = $([regex]::Escape($server.publicKey))$"
        $c.config | Should -Match '(?m)^PresharedKey = '
        $c.config -match '(?m)^PrivateKey = (\S+)$' | Should -BeTrue
        $private = $Matches[1]
        ($private | wg pubkey) | Should -Be $c.publicKey
        [Convert]::FromBase64String($c.qrPng)[0..3] | Should -Be @(0x89, 0x50, 0x4E, 0x47)
        $c.qrSvg | Should -Match '^<svg'
        $peer = Api GET "$peers/$(ConvertTo-KeySegment $c.publicKey)"
        $peer.Json.name | Should -Be 'carol-phone'
        $peer.Json.hasPresharedKey | Should -BeTrue
        # The private key exists nowhere else: not in the peer's answer, the config file or the log.
        $peer.Body | Should -Not -Match ([regex]::Escape($private))
        Get-Content -Raw $conf | Should -Not -Match ([regex]::Escape($private))
        Get-WgTestHostLog $hostProc | Should -Not -Match ([regex]::Escape($private))
        $dup = Api POST "/v1/servers/$name/clients" @{ name = 'carol-phone'; endpoint = 'vpn.example.com' }
        $dup.Status | Should -Be 409
        $dup.Json.errorId | Should -Be 'ClientNameExists'
        (Api POST "/v1/servers/$name/clients" @{ name = 'dave'; endpoint = 'vpn.example.com:99999' }).Json.errorId | Should -Be 'InvalidClientEndpoint'
    }

    It 'reports stats and exports the config without the private key' {
        $st = (Api GET "/v1/servers/$name/stats").Json
        $st.peersConfigured | Should -Be @((Api GET $peers).Json).Count
        $st.peersEnabled | Should -BeLessOrEqual $st.peersConfigured
        $st.egress.tcpOpened | Should -BeGreaterOrEqual 0
        $text = (Api GET "/v1/servers/$name/config").Body
        $text | Should -Match '(?m)^\[Interface\]'
        $text | Should -Not -Match 'PrivateKey'
        (Get-Content -Raw $conf) | Should -Match 'PrivateKey'
    }

    It 'serves an OpenAPI 3 document that describes every v1 operation' {
        $r = Api GET '/openapi/v1.json'
        $r.Status | Should -Be 200
        $doc = $r.Json
        $doc.openapi | Should -Match '^3\.'
        $paths = $doc.paths.PSObject.Properties.Name
        foreach ($p in '/v1/servers', '/v1/servers/{server}', '/v1/servers/{server}/peers', '/v1/servers/{server}/peers/{key}',
            '/v1/servers/{server}/peers/batch', '/v1/servers/{server}/peers/{key}/enable', '/v1/servers/{server}/peers/{key}/disable',
            '/v1/servers/{server}/clients', '/v1/servers/{server}/stats', '/v1/servers/{server}/config') {
            $paths | Should -Contain $p
        }
        $ops = foreach ($p in $doc.paths.PSObject.Properties) { foreach ($m in $p.Value.PSObject.Properties) { $m.Value.operationId } }
        foreach ($id in 'GetServers', 'GetServer', 'SetServer', 'GetPeers', 'GetPeer', 'AddPeer', 'AddPeers', 'SetPeer', 'RemovePeer', 'EnablePeer', 'DisablePeer', 'NewClient', 'GetServerStats', 'ExportConfig') {
            $ops | Should -Contain $id
        }
        $doc.components.schemas.PSObject.Properties.Name | Should -Contain 'PeerCreateDto'
    }
}

Describe 'Management API v1 over HTTPS with bearer tokens' -Skip:$skip {
    BeforeAll {
        $script:rw = (Invoke-HostTokenCommand @('create', '--store', $tokens, '--name', 'ci-rw', '--scope', 'read-write')).Out[0]
        $script:ro = (Invoke-HostTokenCommand @('create', '--store', $tokens, '--name', 'dash-ro', '--scope', 'read')).Out[0]
        function Https([string] $Method, [string] $Path, $Body, [string] $Token) {
            $p = @{ BaseUrl = $base; CaCert = $cert.CertPath; Method = $Method; Path = $Path }
            if ($Token) { $p.Token = $Token }
            if ($null -ne $Body) { $p.Body = $Body | ConvertTo-Json -Compress }
            Invoke-HostApi @p
        }
    }

    It 'stores only hashes, in a file of mode 0600' {
        $rw | Should -Match '^wgh_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$'
        (Get-Item $tokens).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
        $text = Get-Content -Raw $tokens
        $text | Should -Not -Match ([regex]::Escape($rw.Substring(17)))
        $text | Should -Not -Match ([regex]::Escape($ro.Substring(17)))
        $list = (Invoke-HostTokenCommand @('list', '--store', $tokens)).Out -join "`n"
        $list | Should -Match "ci-rw\tread-write"
        $list | Should -Match "dash-ro\tread\t"
    }

    It 'needs a token: none is 401 Unauthorized with a Bearer challenge' {
        $r = Https GET '/v1/servers'
        $r.Status | Should -Be 401
        $r.Json.errorId | Should -Be 'Unauthorized'
    }

    It 'lets a read token read but not change (403 InsufficientScope), and a read-write token change' {
        (Https GET '/v1/servers' -Token $ro).Status | Should -Be 200
        $key = New-TestPublicKey
        $denied = Https POST "/v1/servers/$name/peers" @{ publicKey = $key } -Token $ro
        $denied.Status | Should -Be 403
        $denied.Json.errorId | Should -Be 'InsufficientScope'
        (Https GET "/v1/servers/$name/peers/$(ConvertTo-KeySegment $key)" -Token $ro).Status | Should -Be 404
        (Https POST "/v1/servers/$name/peers" @{ publicKey = $key; name = 'via-https' } -Token $rw).Status | Should -Be 201
        (Https GET "/v1/servers/$name/peers/$(ConvertTo-KeySegment $key)" -Token $ro).Json.name | Should -Be 'via-https'
    }

    It 'refuses a revoked token at once' {
        $t = (Invoke-HostTokenCommand @('create', '--store', $tokens, '--name', 'short-lived', '--scope', 'read')).Out[0]
        (Https GET '/v1/servers' -Token $t).Status | Should -Be 200   # a running host sees a new token at once
        (Invoke-HostTokenCommand @('revoke', '--store', $tokens, 'short-lived')).ExitCode | Should -Be 0
        $r = Https GET '/v1/servers' -Token $t
        $r.Status | Should -Be 401
        $r.Json.errorId | Should -Be 'Unauthorized'
    }

    # Last: it locks 127.0.0.1 out for the rest of the minute.
    It 'rate-limits failed attempts per source: after 3 in a minute even the right token gets 429' {
        # The revocation test above spent one of this minute's 3 failures; wrong tokens until the limit bites.
        $bad = $rw.Substring(0, $rw.Length - 4) + 'AAAA'
        $statuses = foreach ($i in 1..4) { $s = (Https GET '/v1/servers' -Token $bad).Status; $s; if ($s -eq 429) { break } }
        $statuses[-1] | Should -Be 429
        @($statuses | Where-Object { $_ -eq 401 }).Count | Should -BeGreaterOrEqual 1
        @($statuses | Where-Object { $_ -ne 401 -and $_ -ne 429 }) | Should -BeNullOrEmpty
        $r = Https GET '/v1/servers' -Token $rw
        $r.Status | Should -Be 429
        $r.Json.errorId | Should -Be 'TooManyFailedAttempts'
        (Api GET '/v1/servers').Status | Should -Be 200   # the unix socket is another way in, unaffected
    }
}
