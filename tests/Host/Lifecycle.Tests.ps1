# The gateway host as a service: systemd readiness (Type=notify) and journal logging, SIGTERM/SIGINT
# (config flushed, sockets removed, exit 0 within the 5 s the brief and systemd's stop timeout allow),
# kill -9 (every peer the UAPI confirmed survives), unusable settings (exit code 2, a clear message),
# and the API socket's permissions and SO_PEERCRED check.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    $reason = Get-HostSkipReason
    $skip = $null -ne $reason -and $env:CI -ne 'true'
    if ($skip) { Write-Host "SKIPPED: host suite (Lifecycle): $reason" -ForegroundColor Yellow }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../Interop/UapiRaw.psm1') -Force

    # A host with one gateway from NAME.conf in $Dir, a free UDP port, its UAPI and API sockets in $Dir.
    function Start-Gateway([string] $Dir, [string] $Name, [hashtable] $Environment = @{}, [string[]] $Extra = @(), [switch] $UnderSystemd) {
        $script:api = Join-Path $Dir 'api/api.sock'
        $script:uapi = Join-Path $Dir "$Name.sock"
        $h = Start-WgTestHost -Dir $Dir -Environment $Environment -UnderSystemd:$UnderSystemd -Arguments (@(
            (Join-Path $Dir "$Name.conf"), '--Gateways:0:ListenPort=0', "--Gateways:0:UapiPath=$uapi", "--Api:UnixSocket=$api") + $Extra)
        $script:hosts += $h
        $h
    }

    function Add-UapiPeer([string] $Socket, [string] $PublicKey, [string] $AllowedIp) {
        $r = Send-UapiRaw -Path $Socket -Request "set=1`npublic_key=$(ConvertTo-Hex $PublicKey)`nallowed_ip=$AllowedIp`n`n"
        $r.Errno | Should -Be 0
    }

    function New-PublicKey {
        $k = [byte[]]::new(32); [Security.Cryptography.RandomNumberGenerator]::Fill($k); $k[0] = $k[0] -bor 1
        [Convert]::ToBase64String($k)
    }
}

Describe 'WgHost as a service' -Skip:$skip {
    BeforeAll { if ($reason) { throw "host suite cannot run: $reason" } }
    BeforeEach {
        $script:hosts = @()
        $script:dir = New-HostTestDir 'life'
        $script:name = New-HostGatewayName
    }
    AfterEach {
        foreach ($h in $script:hosts) { Remove-WgTestHost $h }
        Remove-Item -Recurse -Force $script:dir -ErrorAction SilentlyContinue
    }

    It 'tells systemd READY=1 only once the gateway serves, logs in the journal format, and STOPPING=1 on SIGTERM' {
        $notifyPath = Join-Path $dir 'notify.sock'
        $notify = [Net.Sockets.Socket]::new('Unix', 'Dgram', 'Unspecified')
        try {
            $notify.Bind([Net.Sockets.UnixDomainSocketEndPoint]::new($notifyPath))
            # What systemd gives a Type=notify service (systemd.exec(5)): its socket and itself as the parent.
            $h = Start-Gateway $dir $name @{ INVOCATION_ID = [guid]::NewGuid().ToString('N'); NOTIFY_SOCKET = $notifyPath } -UnderSystemd
            $buf = [byte[]]::new(4096)
            $notify.Poll(60 * 1000 * 1000, 'SelectRead') | Should -BeTrue -Because (Get-WgTestHostLog $h)
            $msg = [Text.Encoding]::ASCII.GetString($buf, 0, $notify.Receive($buf))
            $msg | Should -Match 'READY=1'
            # At READY the gateway already serves: its UAPI answers and readiness says so.
            (Get-UapiText $uapi) | Should -Match 'listen_port=\d+'
            (Invoke-HostApi -Socket $api -Path '/readyz').Status | Should -Be 200
            # systemd's journal format: a <priority> prefix per line (sd-daemon(3)), no terminal time stamps.
            Get-WgTestHostLog $h | Should -Match "(?m)^<6>WgHost\.GatewayService\[0\] Gateway $name started"
            Stop-WgTestHost $h 'TERM' | Should -BeGreaterOrEqual 0
            $h.Process.ExitCode | Should -Be 0
            $notify.Poll(5 * 1000 * 1000, 'SelectRead') | Should -BeTrue
            [Text.Encoding]::ASCII.GetString($buf, 0, $notify.Receive($buf)) | Should -Match 'STOPPING=1'
        }
        finally { $notify.Dispose() }
    }

    It 'on <Signal>: exits 0 within 5 s with the config on disk and both sockets removed' -ForEach @(@{ Signal = 'TERM' }, @{ Signal = 'INT' }) {
        $h = Start-Gateway $dir $name
        Wait-WgTestHostReady $h $api | Should -BeTrue -Because (Get-WgTestHostLog $h)
        $key = New-PublicKey
        Add-UapiPeer $uapi $key '10.8.0.77/32'
        $seconds = Stop-WgTestHost $h $Signal -Seconds 5
        $seconds | Should -BeGreaterOrEqual 0 -Because "the host must exit within 5 s of SIGTERM/SIGINT`n$(Get-WgTestHostLog $h)"
        $h.Process.ExitCode | Should -Be 0
        Test-Path $uapi | Should -BeFalse
        Test-Path $api | Should -BeFalse
        $conf = Get-Content -Raw (Join-Path $dir "$name.conf")
        $conf | Should -Match ([regex]::Escape("PublicKey = $key"))
        $conf | Should -Match 'AllowedIPs = 10\.8\.0\.77/32'
        Get-WgTestHostLog $h | Should -Match "Gateway $name stopped \(1 peers"
    }

    It 'kill -9 loses no peer the UAPI confirmed: a restart with the same file has them all' {
        $h = Start-Gateway $dir $name
        Wait-WgTestHostReady $h $api | Should -BeTrue -Because (Get-WgTestHostLog $h)
        $keys = 1..5 | ForEach-Object { New-PublicKey }
        for ($i = 0; $i -lt $keys.Count; $i++) { Add-UapiPeer $uapi $keys[$i] "10.8.0.$(10 + $i)/32" }
        Stop-WgTestHost $h 'KILL' | Should -BeGreaterOrEqual 0
        $h.Process.ExitCode | Should -Be 137

        # The dead host's sockets are stale files: the next host replaces them.
        $h2 = Start-Gateway $dir $name
        Wait-WgTestHostReady $h2 $api | Should -BeTrue -Because (Get-WgTestHostLog $h2)
        $text = Get-UapiText $uapi
        foreach ($k in $keys) { $text | Should -Match "public_key=$(ConvertTo-Hex $k)" }
        Stop-WgTestHost $h2 'TERM' | Should -BeGreaterOrEqual 0
    }

    It 'refuses unusable settings with exit code 2 and says why: <Why>' -ForEach @(
        @{ Why = 'no gateway'; Arguments = @(); Expect = 'No gateway configured' }
        @{ Why = 'a bad address'; Arguments = @('X.conf', '--Gateways:0:Address:0=10.8.0.1/99'); Expect = "Address '10\.8\.0\.1/99' is not a CIDR" }
        @{ Why = 'a missing settings file'; Arguments = @('--settings', '/nonexistent/wgh-host.json'); Expect = 'wgh-host\.json' }
        @{ Why = 'a world-writable socket mode'; Arguments = @('X.conf', '--Api:UnixSocketMode=0666'); Expect = "UnixSocketMode '0666' is not allowed" }
        @{ Why = 'a stray argument'; Arguments = @('wg0.txt'); Expect = "Unexpected argument 'wg0\.txt'" }
    ) {
        $a = @($Arguments | ForEach-Object { $_ -replace '^X\.conf$', (Join-Path $dir "$name.conf") }) + @("--Api:UnixSocket=$(Join-Path $dir 'api.sock')", "--Gateways:0:UapiPath=$(Join-Path $dir 'u.sock')", '--Gateways:0:ListenPort=0')
        if ($Why -eq 'no gateway') { $a = @("--Api:UnixSocket=$(Join-Path $dir 'api.sock')") }
        $h = Start-WgTestHost -Dir $dir -Arguments $a
        $script:hosts += $h
        $h.Process.WaitForExit(60 * 1000) | Should -BeTrue
        $h.Process.ExitCode | Should -Be 2
        Get-WgTestHostLog $h | Should -Match $Expect
        Test-Path (Join-Path $dir "$name.conf") | Should -BeFalse   # nothing written
    }

    It 'serves the API socket owner-only in an owner-only folder, and refuses other users by SO_PEERCRED even when the mode is loosened' {
        $h = Start-Gateway $dir $name
        Wait-WgTestHostReady $h $api | Should -BeTrue -Because (Get-WgTestHostLog $h)
        (Get-Item $api).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
        (Get-Item (Split-Path $api)).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite, UserExecute')
        # An operator's mistake opens the file system permissions: the peer-credential check still refuses nobody.
        (Get-Item $dir).UnixFileMode = 'UserRead, UserWrite, UserExecute, OtherExecute, OtherRead'
        (Get-Item (Split-Path $api)).UnixFileMode = 'UserRead, UserWrite, UserExecute, OtherExecute, OtherRead'
        (Get-Item $api).UnixFileMode = 'UserRead, UserWrite, OtherRead, OtherWrite'
        $other = Invoke-HostApi -Socket $api -Path '/healthz' -RunAs 65534
        $other.Status | Should -Be 0 -Because "uid 65534 must get no HTTP answer: $($other.Body)"
        Get-WgTestHostLog $h | Should -Match 'API socket connection refused \(pid \d+ uid 65534 gid 65534\)'
        (Invoke-HostApi -Socket $api -Path '/healthz').Status | Should -Be 200   # root still is
        Stop-WgTestHost $h 'TERM' | Should -BeGreaterOrEqual 0
    }
}
