# The host as a fleet instance (Gateways[].Fleet, docs/host.md and docs/fleet.md): the gateway host joins a fleet
# on a real PostgreSQL (a private initdb cluster on loopback, tests/Interop/FleetSupport.psm1), serves the fleet's
# identity and peers, and its management API writes through the registry, so a peer added over the API is in the
# fleet for every instance and a peer added anywhere else shows up in the host. Bad fleet settings stop the host
# with exit code 2 and a clear message, leaving nothing behind.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../Interop/FleetSupport.psm1') -Force
    $reason = Get-HostSkipReason
    if (-not $reason -and -not (Test-Path '/usr/lib/postgresql/15/bin/initdb')) { $reason = 'postgresql is missing (apt-get install postgresql, as .ci/run does)' }
    $skip = $null -ne $reason -and $env:CI -ne 'true'
    if ($skip) { Write-Host "SKIPPED: host suite (Fleet): $reason" -ForegroundColor Yellow }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../Interop/FleetSupport.psm1') -Force
    if ($reason = Get-HostSkipReason) { throw "host suite cannot run: $reason" }
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force

    # A settings file (mode 0600: it holds the connection string) for one fleet gateway; -Fleet overrides its Fleet part.
    function New-FleetSettings([string] $Path, [hashtable] $Fleet, [hashtable] $Gateway = @{}) {
        $g = @{ Name = $name; ListenPort = 0; UapiPath = $uapi; Fleet = $Fleet } + $Gateway
        @{ Gateways = @($g); Api = @{ UnixSocket = $api } } | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $Path
        & chmod 600 $Path
        $Path
    }
}

Describe 'The host as a fleet instance' -Skip:$skip {
    BeforeAll {
        $script:dir = New-HostTestDir 'fleet'
        $script:name = New-HostGatewayName
        $script:fleet = "hf$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $script:api = Join-Path $dir 'run/api.sock'
        $script:uapi = Join-Path $dir "$name.sock"
        $script:secretPath = Join-Path $dir 'fleet.secret'
        Set-Content -Path $secretPath -Value ([Convert]::ToBase64String([Security.Cryptography.RandomNumberGenerator]::GetBytes(32)))
        & chmod 600 $secretPath
        $script:keyPath = Join-Path $dir 'fleet.key'
        $script:pg = $null; $script:hostProc = $null
        $script:pg = New-FleetPostgres -Folder $dir
        $script:created = New-WgFleet -Registry $pg.ConnectionString -Name $fleet -Address 10.77.0.1/24 -ListenPort 51820 -FleetSecretPath $secretPath -PrivateKeyPath $keyPath
        $script:meshEndpoint = "127.0.0.1:$(Get-FreePort Udp)"
        $script:fleetSettings = @{ Registry = $pg.ConnectionString; Name = $fleet; SecretPath = $secretPath; PrivateKeyPath = $keyPath; InstanceId = "host-$name"; MeshEndpoint = $meshEndpoint }
        $settings = New-FleetSettings (Join-Path $dir 'host.json') $fleetSettings
        $script:hostProc = Start-WgTestHost -Dir $dir -Arguments @('--settings', $settings)
        # This session manages the same fleet through the registry, as an operator elsewhere would.
        Connect-WgServer -Registry $pg.ConnectionString -Fleet $fleet -FleetSecretPath $secretPath | Out-Null
    }
    AfterAll {
        Disconnect-WgServer
        if ($hostProc) { Stop-WgTestHost $hostProc 'TERM' | Out-Null; Remove-WgTestHost $hostProc }
        Remove-FleetPostgres $script:pg
        Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
    }

    It 'starts as an instance of the fleet: its identity and addresses, its instance in the registry' {
        Wait-WgTestHostReady $hostProc $api | Should -BeTrue -Because (Get-WgTestHostLog $hostProc)
        $s = (Invoke-HostApi -Socket $api -Path "/v1/servers/$name").Json
        $s.publicKey | Should -Be $created.PublicKey
        $s.address | Should -Be @('10.77.0.1/24')
        $s.backend | Should -BeLike 'Fleet/*'
        (Get-UapiText $uapi) | Should -Match "listen_port=$($s.listenPort)\b"
        Get-WgTestHostLog $hostProc | Should -Match "fleet '$fleet', instance host-$name"
        # The connection string may hold a password: never in the log.
        Get-WgTestHostLog $hostProc | Should -Not -Match ([regex]::Escape($pg.ConnectionString))
        # Its heartbeat row, read with psql straight from the registry.
        $sql = "SELECT id FROM instances WHERE fleet = '$fleet'"
        Wait-Until { (& psql -h 127.0.0.1 -p $pg.Port -U wg -d postgres -tAc $sql) -contains "host-$name" } -Seconds 15 | Should -BeTrue
        # Its mesh (the cross-instance hub) is published for the other instances, with a node key of its own.
        $mesh = "SELECT mesh_endpoint || ' ' || node_key FROM instances WHERE fleet = '$fleet' AND id = 'host-$name'"
        $row = "$(& psql -h 127.0.0.1 -p $pg.Port -U wg -d postgres -tAc $mesh)".Trim()
        $row | Should -Match "^$([regex]::Escape($meshEndpoint)) \S{44}$"
        $row | Should -Not -Match ([regex]::Escape($created.PublicKey))
    }

    It 'adds a peer over the API into the registry: the fleet has it with an allocated address, and the engine serves it' {
        $k = New-TestPublicKey
        $r = Invoke-HostApi -Socket $api -Method POST -Path "/v1/servers/$name/peers" -Body (@{ publicKey = $k; name = 'api-peer' } | ConvertTo-Json)
        $r.Status | Should -Be 201 -Because $r.Body
        $p = Get-WgPeer -PublicKey $k
        $p.Name | Should -Be 'api-peer'
        $p.AllowedIPs | Should -Be @($r.Json.allowedIPs)
        $p.AllowedIPs[0] | Should -Match '^10\.77\.0\.\d+/32$'
        (Get-UapiText $uapi) | Should -Match "public_key=$(ConvertTo-Hex $k)"
    }

    It 'shows a peer added elsewhere in the fleet (the registry) within a few seconds, and removes it the same way' {
        $k = New-TestPublicKey
        Add-WgPeer -PublicKey $k -Name 'elsewhere' | Out-Null
        Wait-Until { (Invoke-HostApi -Socket $api -Path "/v1/servers/$name/peers/$(ConvertTo-KeySegment $k)").Status -eq 200 } -Seconds 10 | Should -BeTrue
        (Invoke-HostApi -Socket $api -Path "/v1/servers/$name/peers/$(ConvertTo-KeySegment $k)").Json.name | Should -Be 'elsewhere'
        Remove-WgPeer -PublicKey $k -Confirm:$false
        Wait-Until { (Get-UapiText $uapi) -notmatch "public_key=$(ConvertTo-Hex $k)" } -Seconds 10 | Should -BeTrue
        (Invoke-HostApi -Socket $api -Path "/v1/servers/$name/peers/$(ConvertTo-KeySegment $k)").Status | Should -Be 404
    }

    It 'refuses over the API what the registry does not hold, with NotSupportedInFleet, and changes nothing' {
        $before = (Invoke-HostApi -Socket $api -Path "/v1/servers/$name").Json.listenPort
        $r = Invoke-HostApi -Socket $api -Method PATCH -Path "/v1/servers/$name" -Body (@{ listenPort = 0 } | ConvertTo-Json)
        $r.Status | Should -Be 409 -Because $r.Body
        $r.Json.errorId | Should -Be 'NotSupportedInFleet'
        (Invoke-HostApi -Socket $api -Path "/v1/servers/$name").Json.listenPort | Should -Be $before
    }

    It 'stops only this instance on SIGTERM: the fleet and its peers stay in the registry' {
        $count = @(Get-WgPeer).Count
        $count | Should -BeGreaterThan 0
        Stop-WgTestHost $hostProc 'TERM' | Should -BeGreaterOrEqual 0
        $hostProc.Process.ExitCode | Should -Be 0
        @(Get-WgPeer).Count | Should -Be $count
        Test-Path $uapi | Should -BeFalse
    }

    It 'refuses unusable fleet settings with exit code 2 and says why: <Why>' -ForEach @(
        @{ Why = 'no secret file given'; Change = 'NoSecret'; Expect = 'FleetParameterMissing: .*Fleet\.SecretPath is missing' }
        @{ Why = 'a config file beside the fleet'; Change = 'ConfigPath'; Expect = 'FleetSettingNotApplicable: .*ConfigPath' }
        @{ Why = 'a key that is not the fleet''s'; Change = 'OtherKey'; Expect = 'FleetKeyMismatch' }
        @{ Why = 'a key file without a key'; Change = 'BadKeyFile'; Expect = 'InvalidPrivateKeyFile' }
        @{ Why = 'a wrong fleet secret'; Change = 'WrongSecret'; Expect = 'FleetSecretMismatch' }
    ) {
        $f = $fleetSettings.Clone()
        $g = @{}
        switch ($Change) {
            'NoSecret' { $f.Remove('SecretPath') }
            'ConfigPath' { $g.ConfigPath = Join-Path $dir "$name.conf" }
            'OtherKey' { $f.PrivateKeyPath = Join-Path $dir 'other.key'; Set-Content -Path $f.PrivateKeyPath -Value (New-WgKey).PrivateKey; & chmod 600 $f.PrivateKeyPath }
            'BadKeyFile' { $f.PrivateKeyPath = Join-Path $dir 'bad.key'; Set-Content -Path $f.PrivateKeyPath -Value 'not a key' }
            'WrongSecret' { $f.SecretPath = Join-Path $dir 'wrong.secret'; Set-Content -Path $f.SecretPath -Value ('x' * 32) }
        }
        $settings = New-FleetSettings (Join-Path $dir "bad-$Change.json") $f $g
        $h = Start-WgTestHost -Dir $dir -Arguments @('--settings', $settings)
        try {
            $h.Process.WaitForExit(60 * 1000) | Should -BeTrue
            $h.Process.ExitCode | Should -Be 2
            Get-WgTestHostLog $h | Should -Match $Expect
            Test-Path $uapi | Should -BeFalse
            Test-Path (Join-Path $dir "$name.conf") | Should -BeFalse
        } finally { Remove-WgTestHost $h }
    }
}
