# The brief's end-to-end check of the API: curl with a bearer token provisions a client on a host, and a
# real wg-quick brings that exact config up and reaches the gateway through the tunnel. The host runs in
# a namespace of this test, the client in another, joined by a veth pair on a benchmarking-range /30
# (198.18.0.0/15, RFC 2544) that exists only inside them. Also: single-use, time-limited config links.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../Interop/WgInterop.psm1') -Force
    $reason = Get-HostSkipReason
    $prereq = Test-WgInteropPrerequisite
    if (-not $prereq.Ok) { $reason = "missing: $($prereq.Missing -join ', ')" }
    if (-not (Get-Command wg-quick -CommandType Application -ErrorAction SilentlyContinue)) { $reason = 'wg-quick is missing (wireguard-tools)' }
    $skip = $null -ne $reason -and $env:CI -ne 'true'
    if ($skip) { Write-Host "SKIPPED: host suite (Provision): $reason" -ForegroundColor Yellow }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../Interop/WgInterop.psm1') -Force
    if ($reason) { throw "host suite cannot run: $reason" }

    $script:net = New-WgTestNetwork
    $script:dir = New-HostTestDir 'prov'
    $script:name = New-HostGatewayName
    $script:nsHost = New-WgTestNamespace -Network $net -Role 'hst'
    $script:nsClient = New-WgTestNamespace -Network $net -Role 'cli'
    $third = Get-Random -Minimum 0 -Maximum 255
    $script:underHost = "198.18.$third.1"; $underClient = "198.18.$third.2"
    $va = "wv$($net.RunId)a"; $vb = "wv$($net.RunId)b"
    Invoke-WgNative ip 'link', 'add', $va, 'netns', $nsHost, 'type', 'veth', 'peer', 'name', $vb, 'netns', $nsClient | Out-Null
    Invoke-WgNative ip '-n', $nsHost, 'addr', 'add', "$underHost/30", 'dev', $va | Out-Null
    Invoke-WgNative ip '-n', $nsClient, 'addr', 'add', "$underClient/30", 'dev', $vb | Out-Null
    Invoke-WgNative ip '-n', $nsHost, 'link', 'set', $va, 'up' | Out-Null
    Invoke-WgNative ip '-n', $nsClient, 'link', 'set', $vb, 'up' | Out-Null

    $script:gw = Get-WgTestAddress $net 1
    $script:api = Join-Path $dir 'run/api.sock'
    $script:tokens = Join-Path $dir 'tokens.json'
    $script:cert = New-TestCertificate $dir
    $script:base = 'https://127.0.0.1:8443'   # the host namespace's own loopback: nothing else listens there
    $script:hostProc = Start-WgTestHost -Dir $dir -Namespace $nsHost -Arguments @((Join-Path $dir "$name.conf"), '--Gateways:0:ListenPort=0',
        "--Gateways:0:UapiPath=$(Join-Path $dir "$name.sock")", "--Gateways:0:Address:0=$($gw.V4Cidr)", '--Gateways:0:Egress=None',
        "--Api:UnixSocket=$api", "--Api:Https:Url=$base", "--Api:Https:CertificatePath=$($cert.CertPath)",
        "--Api:Https:KeyPath=$($cert.KeyPath)", "--Api:Https:TokenStore=$tokens")
    if (-not (Wait-WgTestHostReady $hostProc $api)) { throw "host did not start: $(Get-WgTestHostLog $hostProc)" }
    $script:port = (Invoke-HostApi -Socket $api -Path "/v1/servers/$name").Json.listenPort
    $script:token = (Invoke-HostTokenCommand @('create', '--store', $tokens, '--name', 'provisioner', '--scope', 'read-write')).Out[0]

    # curl inside the host's namespace, as an operator's script on the host (or behind a port forward) would run it.
    function Invoke-Curl([string[]] $Arguments) {
        $out = Invoke-InNamespace $nsHost curl (@('-s', '--max-time', '20', '--cacert', $cert.CertPath, '-w', "`n%{http_code}") + $Arguments) -AllowFailure
        $text = ($out | ForEach-Object { "$_" }) -join "`n"
        $i = $text.LastIndexOf("`n")
        [pscustomobject]@{ Status = [int]$text.Substring($i + 1); Body = $text.Substring(0, [Math]::Max(0, $i)) }
    }
    function New-Client([hashtable] $Body) {
        $json = Join-Path $dir "req-$([guid]::NewGuid().ToString('N')).json"
        Set-Content -Path $json -Value ($Body | ConvertTo-Json -Compress)
        Invoke-Curl @('-H', "Authorization: Bearer $token", '-H', 'Content-Type: application/json', '--data-binary', "@$json", "$base/v1/servers/$name/clients")
    }
    $script:ifname = "wq$($net.RunId)"
    $script:clientConf = Join-Path $dir "$ifname.conf"
}

AfterAll {
    if ($ifname) {
        & ip netns exec $nsClient wg-quick down $clientConf 2>$null | Out-Null
        Remove-Item -LiteralPath "/var/run/wireguard/$ifname.sock" -Force -ErrorAction Ignore
    }
    if ($hostProc) { Stop-WgTestHost $hostProc 'TERM' | Out-Null; Remove-WgTestHost $hostProc }
    Remove-WgTestNetwork $net
    if ($dir) { Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue }
}

Describe 'Client provisioning with curl and a token, brought up by wg-quick' -Skip:$skip {
    It 'provisions a client whose config a real wg-quick brings up, reaching the gateway through the tunnel' {
        $r = New-Client @{ name = 'wgquick-laptop'; endpoint = "$underHost`:$port"; allowedIPs = @($gw.V4Net); persistentKeepalive = 5 }
        $r.Status | Should -Be 201 -Because $r.Body
        $c = $r.Body | ConvertFrom-Json
        $c.endpoint | Should -Be "$underHost`:$port"
        [IO.File]::WriteAllText($clientConf, $c.config)
        (Get-Item $clientConf).UnixFileMode = 'UserRead, UserWrite'
        # Without a kernel module wg-quick falls back to wireguard-go by itself (its documented fallback).
        $up = Invoke-InNamespace $nsClient wg-quick 'up', $clientConf -AllowFailure
        $LASTEXITCODE | Should -Be 0 -Because ($up -join "`n")
        (Test-Ping -Namespace $nsClient -Target $gw.V4 -Count 5 -Deadline 20 -MinReceived 3).Success | Should -BeTrue
        $peer = Invoke-HostApi -Socket $api -Path "/v1/servers/$name/peers/$(ConvertTo-KeySegment $c.publicKey)"
        $peer.Json.latestHandshake | Should -Not -BeNullOrEmpty
        $peer.Json.endpoint | Should -Be "$underClient`:$((Invoke-InNamespace $nsClient wg 'show', $ifname, 'listen-port')[0].Trim())"
        $peer.Json.receivedBytes | Should -BeGreaterThan 0
    }

    It 'serves a single-use config link once, then 410 LinkUsed; an unknown one is 404' {
        $r = New-Client @{ name = 'link-phone'; endpoint = "$underHost`:$port"; linkSeconds = 300 }
        $r.Status | Should -Be 201
        $c = $r.Body | ConvertFrom-Json
        $c.link | Should -Match '^/v1/links/[A-Za-z0-9_-]{43}$'
        ([DateTimeOffset]$c.linkExpiresAt - [DateTimeOffset]::UtcNow).TotalSeconds | Should -BeGreaterThan 200
        $first = Invoke-Curl @("$base$($c.link)")   # no token: the link is the capability
        $first.Status | Should -Be 200
        $first.Body.Replace("`r`n", "`n").TrimEnd() | Should -Be $c.config.Replace("`r`n", "`n").TrimEnd()
        $again = Invoke-Curl @("$base$($c.link)")
        $again.Status | Should -Be 410
        ($again.Body | ConvertFrom-Json).errorId | Should -Be 'LinkUsed'
        $again.Body | Should -Not -Match 'PrivateKey'
        $unknown = Invoke-Curl @("$base/v1/links/$('A' * 43)")
        $unknown.Status | Should -Be 404
        ($unknown.Body | ConvertFrom-Json).errorId | Should -Be 'LinkNotFound'
    }

    It 'answers 410 LinkExpired once a link''s time is up, without serving it' {
        $c = (New-Client @{ name = 'link-late'; endpoint = "$underHost`:$port"; linkSeconds = 1 }).Body | ConvertFrom-Json
        $expires = [DateTimeOffset]$c.linkExpiresAt
        Wait-Until { [DateTimeOffset]::UtcNow -gt $expires.AddMilliseconds(200) } -Seconds 10 | Should -BeTrue
        $late = Invoke-Curl @("$base$($c.link)")
        $late.Status | Should -Be 410
        ($late.Body | ConvertFrom-Json).errorId | Should -Be 'LinkExpired'
        $bad = New-Client @{ name = 'link-bad'; endpoint = "$underHost`:$port"; linkSeconds = 0 }
        $bad.Status | Should -Be 400
        ($bad.Body | ConvertFrom-Json).errorId | Should -Be 'InvalidLinkLifetime'
        (Invoke-HostApi -Socket $api -Path "/v1/servers/$name/peers?name=link-bad").Json | Should -BeNullOrEmpty
    }
}
