# Prometheus metrics of the host: a real Prometheus (Debian's package) started here on a loopback port
# with its own data folder scrapes the host's loopback metrics listener, and a PromQL query through
# Prometheus' HTTP API returns the bytes of a real wireguard-go client that pinged through the gateway
# (client in a namespace of this test; its UDP socket on 127.0.0.1, as the interop suites do).

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../Interop/WgInterop.psm1') -Force
    $reason = Get-HostSkipReason
    $prereq = Test-WgInteropPrerequisite
    if (-not $prereq.Ok) { $reason = "missing: $($prereq.Missing -join ', ')" }
    if (-not (Get-Command prometheus -CommandType Application -ErrorAction SilentlyContinue)) { $reason = 'prometheus is missing (apt-get install prometheus, as .ci/run does)' }
    $skip = $null -ne $reason -and $env:CI -ne 'true'
    if ($skip) { Write-Host "SKIPPED: host suite (Metrics): $reason" -ForegroundColor Yellow }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../Interop/WgInterop.psm1') -Force
    if ($reason) { throw "host suite cannot run: $reason" }

    $script:net = New-WgTestNetwork
    $script:dir = New-HostTestDir 'metrics'
    $script:name = New-HostGatewayName
    $script:api = Join-Path $dir 'run/api.sock'
    $script:metricsPort = Get-FreeTcpPort
    $gw = Get-WgTestAddress $net 1
    $script:hostProc = Start-WgTestHost -Dir $dir -Arguments @((Join-Path $dir "$name.conf"), '--Gateways:0:ListenPort=0',
        "--Gateways:0:UapiPath=$(Join-Path $dir "$name.sock")", "--Gateways:0:Address:0=$($gw.V4Cidr)", '--Gateways:0:Egress=None',
        "--Api:UnixSocket=$api", "--Api:MetricsUrl=http://127.0.0.1:$metricsPort")
    if (-not (Wait-WgTestHostReady $hostProc $api)) { throw "host did not start: $(Get-WgTestHostLog $hostProc)" }
    $script:server = (Invoke-HostApi -Socket $api -Path "/v1/servers/$name").Json

    # A real client: wireguard-go with its TUN in our namespace, the gateway as its peer.
    $kp = New-WgGoKeyPair
    $script:clientKey = $kp.PublicKey
    $me = Get-WgTestAddress $net 2
    $add = Invoke-HostApi -Socket $api -Method POST -Path "/v1/servers/$name/peers" -Body (@{ publicKey = $kp.PublicKey; name = 'prom-client'; allowedIPs = @($me.V4Host) } | ConvertTo-Json)
    if ($add.Status -ne 201) { throw "adding the peer failed: $($add.Body)" }
    $script:client = New-WgGoClient -Network $net -Role 'c1' -PrivateKey $kp.PrivateKey -Address $me.V4Cidr -PeerPublicKey $server.publicKey `
        -Endpoint "127.0.0.1:$($server.listenPort)" -AllowedIPs $me.V4Net
    $script:gwAddress = $gw.V4

    # Prometheus on a free loopback port, scraping the host every second, data in our own folder.
    $script:promPort = Get-FreeTcpPort
    $promDir = Join-Path $dir 'prometheus'
    New-Item -ItemType Directory -Path (Join-Path $promDir 'data') | Out-Null
    $promConfig = Join-Path $promDir 'prometheus.yml'
    Set-Content -Path $promConfig -Value @"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: wghost
    static_configs:
      - targets: ['127.0.0.1:$metricsPort']
"@
    $psi = [Diagnostics.ProcessStartInfo]::new('prometheus')
    foreach ($a in "--config.file=$promConfig", "--storage.tsdb.path=$(Join-Path $promDir 'data')", "--web.listen-address=127.0.0.1:$promPort", '--log.level=warn') { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
    $script:prom = [Diagnostics.Process]::new(); $prom.StartInfo = $psi
    [void]$prom.Start(); $prom.BeginOutputReadLine(); $prom.BeginErrorReadLine()
    $script:promUrl = "http://127.0.0.1:$promPort"
    function Get-Http([string] $Url) {
        $out = & curl -s --max-time 10 -w "`n%{http_code}" $Url 2>$null
        $text = ($out | ForEach-Object { "$_" }) -join "`n"
        $i = $text.LastIndexOf("`n")
        [pscustomobject]@{ Status = [int]$text.Substring($i + 1); Body = $text.Substring(0, [Math]::Max(0, $i)) }
    }
    function Invoke-PromQuery([string] $Query) {
        $r = Get-Http "$promUrl/api/v1/query?query=$([uri]::EscapeDataString($Query))"
        if ($r.Status -ne 200) { return @() }
        @(($r.Body | ConvertFrom-Json).data.result)
    }
    if (-not (Wait-Until { $prom.HasExited -or (Get-Http "$promUrl/-/ready").Status -eq 200 } -Seconds 60) -or $prom.HasExited) {
        throw 'prometheus did not become ready'
    }
}

AfterAll {
    if ($prom -and -not $prom.HasExited) { $prom.Kill(); $prom.WaitForExit(5000) | Out-Null }
    Remove-WgTestNetwork $net
    if ($hostProc) { Stop-WgTestHost $hostProc 'TERM' | Out-Null; Remove-WgTestHost $hostProc }
    if ($dir) { Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue }
}

Describe 'Prometheus metrics of the host' -Skip:$skip {
    It 'exposes the exporter''s metric names and labels, the engine counters and the peer gauges at /metrics' {
        $m = Get-Http "http://127.0.0.1:$metricsPort/metrics"
        $m.Status | Should -Be 200
        foreach ($t in 'wireguard_sent_bytes_total counter', 'wireguard_received_bytes_total counter', 'wireguard_latest_handshake_seconds gauge',
            'wireguard_gateway_handshakes_completed_total counter', 'wireguard_gateway_dropped_packets_total counter', 'wireguard_gateway_peers gauge',
            'wireguard_gateway_send_batches_total counter', 'wireguard_gateway_receive_batch_datagrams_total counter',
            'wireguard_gateway_receive_coalesced_datagrams_total counter', 'wireguard_gateway_inline_receive_batches_total counter',
            'wireguard_gateway_parallel_seal_batches_total counter', 'wireguard_gateway_parallel_open_batches_total counter') {
            $m.Body | Should -Match "(?m)^# TYPE $t$"
        }
        $labels = "interface=`"$name`",public_key=`"$([regex]::Escape($clientKey))`",allowed_ips=`"[^`"]+`",friendly_name=`"prom-client`""
        $m.Body | Should -Match "wireguard_sent_bytes_total\{$labels\}"
        $m.Body | Should -Match "wireguard_gateway_peers\{interface=`"$name`",state=`"configured`"\} 1"
        # The same listener serves nothing else: it has no token.
        (Get-Http "http://127.0.0.1:$metricsPort/v1/servers").Status | Should -Be 403
        (Get-Http "http://127.0.0.1:$metricsPort/readyz").Status | Should -Be 200
    }

    It 'is scraped by a real Prometheus, whose PromQL answer has the real client''s bytes and handshake' {
        (Test-Ping -Namespace $client.Namespace -Target $gwAddress -Count 5 -Deadline 20 -MinReceived 3).Success | Should -BeTrue
        $client2gw = (Get-WgGoPeerStat $client | Where-Object PublicKey -eq $server.publicKey).SentBytes
        $client2gw | Should -BeGreaterThan 0
        $q = "wireguard_received_bytes_total{interface=`"$name`",public_key=`"$clientKey`"}"
        # Wait for a scrape after the pings: the value reaches what the client has sent at least once by now.
        $ok = Wait-Until { $r = Invoke-PromQuery $q; $r.Count -eq 1 -and [double]$r[0].value[1] -gt 0 } -Seconds 30
        $ok | Should -BeTrue -Because 'Prometheus must have scraped the host after the pings'
        $r = Invoke-PromQuery $q
        $r[0].metric.friendly_name | Should -Be 'prom-client'
        $r[0].metric.allowed_ips | Should -Match '/32$'
        [double]$r[0].value[1] | Should -BeLessOrEqual ([double]((Get-WgGoPeerStat $client | Where-Object PublicKey -eq $server.publicKey).SentBytes))
        $sent = Invoke-PromQuery "wireguard_sent_bytes_total{public_key=`"$clientKey`"}"
        [double]$sent[0].value[1] | Should -BeGreaterThan 0
        $hs = Invoke-PromQuery "wireguard_latest_handshake_seconds{public_key=`"$clientKey`"}"
        [double]$hs[0].value[1] | Should -BeGreaterThan ([DateTimeOffset]::UtcNow.AddMinutes(-5).ToUnixTimeSeconds())
        (Invoke-PromQuery "wireguard_gateway_peers{interface=`"$name`",state=`"connected`"}")[0].value[1] | Should -Be '1'
        [double](Invoke-PromQuery "wireguard_gateway_handshakes_completed_total{interface=`"$name`"}")[0].value[1] | Should -BeGreaterOrEqual 1
        # The pings came in and went out through batched socket calls, whose sizes are exported.
        [double](Invoke-PromQuery "wireguard_gateway_receive_batch_datagrams_total{interface=`"$name`"}")[0].value[1] | Should -BeGreaterOrEqual 3
        [double](Invoke-PromQuery "wireguard_gateway_send_batches_total{interface=`"$name`"}")[0].value[1] | Should -BeGreaterOrEqual 1
    }

    It 'splits the drops by reason, with every reason exported from zero' {
        $series = { param($reason) "wireguard_gateway_dropped_packets_by_reason_total\{interface=`"$name`",reason=`"$reason`"\} (\d+)" }
        $m = (Get-Http "http://127.0.0.1:$metricsPort/metrics").Body
        foreach ($r in 'malformed', 'bad_mac1', 'replayed', 'queue_full', 'quota_exceeded') { $m | Should -Match (& $series $r) }
        $m -match (& $series 'malformed') | Should -BeTrue
        $before = [long]$Matches[1]
        # Three bytes are no WireGuard message: dropped silently, counted as malformed.
        $udp = [Net.Sockets.UdpClient]::new([Net.IPEndPoint]::new([Net.IPAddress]::Loopback, 0))
        try { [void]$udp.Send([byte[]](1, 2, 3), 3, [Net.IPEndPoint]::new([Net.IPAddress]::Loopback, [int]$server.listenPort)) } finally { $udp.Dispose() }
        $counted = Wait-Until {
            (Get-Http "http://127.0.0.1:$metricsPort/metrics").Body -match (& $series 'malformed') -and [long]$Matches[1] -eq $before + 1
        } -Seconds 10
        $counted | Should -BeTrue -Because 'the malformed datagram must be counted under its reason'
        $m = (Get-Http "http://127.0.0.1:$metricsPort/metrics").Body
        $m | Should -Match "(?m)^# TYPE wireguard_gateway_egress_tcp_resets_total counter$"
        $m | Should -Match "(?m)^# TYPE wireguard_gateway_tun_to_host_packets_total counter$"
        $m | Should -Match "wireguard_gateway_policy_denied_total\{interface=`"$name`"\} 0"
    }

    It 'drops a removed peer''s series' {
        $k = New-TestPublicKey
        (Invoke-HostApi -Socket $api -Method POST -Path "/v1/servers/$name/peers" -Body (@{ publicKey = $k; name = 'short' } | ConvertTo-Json)).Status | Should -Be 201
        (Get-Http "http://127.0.0.1:$metricsPort/metrics").Body | Should -Match ([regex]::Escape("public_key=`"$k`""))
        (Invoke-HostApi -Socket $api -Method DELETE -Path "/v1/servers/$name/peers/$(ConvertTo-KeySegment $k)").Status | Should -Be 204
        (Get-Http "http://127.0.0.1:$metricsPort/metrics").Body | Should -Not -Match ([regex]::Escape("public_key=`"$k`""))
    }
}
