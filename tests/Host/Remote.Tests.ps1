# Connect-WgServer: a second PowerShell process (this one) manages a gateway host started in another
# process with the module's own cmdlets: the same objects, pipeline binding, -WhatIf and ErrorIds as
# in-process, and docs/runbook.md's procedure run against the host (its sections 2, 4 and 6 with the
# host's equivalents the runbook names: connect instead of start, a backup copied on the host, a
# restart by SIGTERM and a new start).

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    $reason = Get-HostSkipReason
    $skip = $null -ne $reason -and $env:CI -ne 'true'
    if ($skip) { Write-Host "SKIPPED: host suite (Remote): $reason" -ForegroundColor Yellow }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HostSupport.psm1') -Force
    if ($reason = Get-HostSkipReason) { throw "host suite cannot run: $reason" }
    $script:root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:manifest = Join-Path $root 'module/WireGuardGateway.psd1'
    Import-Module $manifest -Force

    # A host with one gateway; returns its process, and sets $api/$uapi/$conf for it.
    function Start-RemoteHost([string] $Dir, [string] $Name, [string[]] $Extra = @()) {
        $script:api = Join-Path $Dir 'run/api.sock'
        $script:uapi = Join-Path $Dir "$Name.sock"
        $script:conf = Join-Path $Dir "$Name.conf"
        $h = Start-WgTestHost -Dir $Dir -Arguments (@($conf, '--Gateways:0:ListenPort=0', "--Gateways:0:UapiPath=$uapi", "--Api:UnixSocket=$api") + $Extra)
        if (-not (Wait-WgTestHostReady $h $api)) { throw "host did not start: $(Get-WgTestHostLog $h)" }
        $h
    }
}

Describe 'Connect-WgServer against a host in another process' -Skip:$skip {
    BeforeAll {
        $script:dir = New-HostTestDir 'remote'
        $script:name = New-HostGatewayName
        $script:tokens = Join-Path $dir 'tokens.json'
        $script:cert = New-TestCertificate $dir
        $script:base = "https://127.0.0.1:$(Get-FreeTcpPort)"
        $script:hostProc = Start-RemoteHost $dir $name @("--Api:Https:Url=$base", "--Api:Https:CertificatePath=$($cert.CertPath)",
            "--Api:Https:KeyPath=$($cert.KeyPath)", "--Api:Https:TokenStore=$tokens")
    }
    AfterAll {
        Disconnect-WgServer
        if ($hostProc) { Stop-WgTestHost $hostProc 'TERM' | Out-Null; Remove-WgTestHost $hostProc }
        Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
    }
    AfterEach { Disconnect-WgServer }

    It 'connects over the unix socket and shows the host''s gateway as a WgServer' {
        $c = Connect-WgServer -Path $api
        $c.Kind | Should -Be 'UnixSocket'
        $c.Servers | Should -Be @($name)
        $s = Get-WgServer
        $s | Should -BeOfType ([WgPowerShell.Models.WgServer])
        $s.Name | Should -Be $name
        (Get-UapiText $uapi) | Should -Match "listen_port=$($s.ListenPort)\b"
        $s.ConfigPath | Should -Be $conf
    }

    It 'adds, gets, sets, disables and removes with the same objects, pipeline binding and -WhatIf' {
        Connect-WgServer -Path $api | Out-Null
        $keys = 1..3 | ForEach-Object { (New-WgKey).PublicKey }
        $added = $keys | ForEach-Object -Begin { $i = 0 } -Process { [pscustomobject]@{ PublicKey = $_; Name = "csv-$((++$i))" } } | Add-WgPeer
        $added | Should -HaveCount 3
        $added[0] | Should -BeOfType ([WgPowerShell.Models.WgPeer])
        $added.Server | Should -Be @($name, $name, $name)
        # In the host, in its engine and its file (another process) before the cmdlet returned.
        foreach ($k in $keys) { (Get-UapiText $uapi) | Should -Match "public_key=$(ConvertTo-Hex $k)" }
        foreach ($k in $keys) { Get-Content -Raw $conf | Should -Match ([regex]::Escape($k)) }
        Get-WgPeer -Name 'csv-*' | Remove-WgPeer -WhatIf
        @(Get-WgPeer -Name 'csv-*') | Should -HaveCount 3
        Get-WgPeer -Name csv-1 | Set-WgPeer -Name csv-one -PassThru | ForEach-Object Name | Should -Be 'csv-one'
        $d = Get-WgPeer -Name csv-2 | Disable-WgPeer -PassThru
        $d.Enabled | Should -BeFalse
        (Get-UapiText $uapi) | Should -Not -Match "public_key=$(ConvertTo-Hex $keys[1])"
        Get-WgPeer -Name 'csv-*' | Remove-WgPeer
        @(Get-WgPeer -Name 'csv-*' -ErrorAction SilentlyContinue) | Should -HaveCount 0
        Get-Content -Raw $conf | Should -Not -Match ([regex]::Escape($keys[0]))
    }

    It 'reports the engine''s ErrorIds as non-terminating errors per item' {
        Connect-WgServer -Path $api | Out-Null
        $k = (New-WgKey).PublicKey
        Add-WgPeer -PublicKey $k -AllowedIPs 10.8.0.250/32 | Out-Null
        Add-WgPeer -PublicKey $k -ErrorVariable e1 -ErrorAction SilentlyContinue | Out-Null
        $e1[0].FullyQualifiedErrorId | Should -BeLike 'PeerAlreadyExists,*'
        Add-WgPeer -PublicKey (New-WgKey).PublicKey -AllowedIPs 10.8.0.250/32 -ErrorVariable e2 -ErrorAction SilentlyContinue | Out-Null
        $e2[0].FullyQualifiedErrorId | Should -BeLike 'AllowedIPsOverlap,*'
        Get-WgPeer -PublicKey (New-WgKey).PublicKey -ErrorVariable e3 -ErrorAction SilentlyContinue
        $e3[0].FullyQualifiedErrorId | Should -BeLike 'PeerNotFound,*'
        Get-WgPeer -Server nosuchgw -ErrorVariable e4 -ErrorAction SilentlyContinue
        $e4[0].FullyQualifiedErrorId | Should -BeLike 'WgServerNotFound,*'
        Stop-WgServer -ErrorVariable e5 -ErrorAction SilentlyContinue
        $e5[0].FullyQualifiedErrorId | Should -BeLike 'RemoteServerNotStoppable,*'
        (Get-WgServer).State | Should -Be 'Running'
        { Export-WgConfig -IncludePrivateKey } | Should -Throw -ErrorId 'PrivateKeyNotExported*'
        Export-WgConfig | Should -Not -Match 'PrivateKey'
        Remove-WgPeer -PublicKey $k
    }

    It 'shows the traffic policy, refuses to change it remotely with PolicyNotRemote, and never exports preshared keys' {
        Connect-WgServer -Path $api | Out-Null
        $before = Get-WgServer
        $before.PeerIsolation | Should -BeFalse
        $before.EgressRules.Unprotected | Should -BeFalse
        Set-WgServer -PeerIsolation -ErrorVariable e1 -ErrorAction SilentlyContinue
        $e1[0].FullyQualifiedErrorId | Should -BeLike 'PolicyNotRemote,*'
        (Get-WgServer).PeerIsolation | Should -BeFalse
        $k = (New-WgKey).PublicKey
        Add-WgPeer -PublicKey $k -AllowedIPs 10.8.0.249/32 | Out-Null
        Set-WgPeer -PublicKey $k -Tag staff -ErrorVariable e2 -ErrorAction SilentlyContinue
        $e2[0].FullyQualifiedErrorId | Should -BeLike 'PolicyNotRemote,*'
        @((Get-WgPeer -PublicKey $k).Tag) | Should -HaveCount 0
        Set-WgTag -Name staff -Acl 'allow 10.0.0.0/8 tcp 443' -ErrorVariable e3 -ErrorAction SilentlyContinue
        $e3[0].FullyQualifiedErrorId | Should -BeLike 'PolicyNotRemote,*'
        @(Get-WgTag) | Should -HaveCount 0
        { Export-WgConfig -IncludePresharedKey } | Should -Throw -ErrorId 'PresharedKeyNotExported*'
        Remove-WgPeer -PublicKey $k
    }

    It 'provisions a client with New-WgClient whose key only this session sees' {
        Connect-WgServer -Path $api | Out-Null
        $c = New-WgClient -Name 'remote-client' -Endpoint vpn.example.com -WithPresharedKey
        $c | Should -BeOfType ([WgPowerShell.Models.WgClient])
        $c.Config -match '(?m)^PrivateKey = (\S+)$' | Should -BeTrue
        Get-WgPublicKey -PrivateKey $Matches[1] | Should -Be $c.PublicKey
        Get-Content -Raw $conf | Should -Not -Match ([regex]::Escape($Matches[1]))
        (Get-WgPeer -Name 'remote-client').HasPresharedKey | Should -BeTrue
        Get-WgPeer -Name 'remote-client' | Remove-WgPeer
    }

    It 'connects over HTTPS with a token, trusting the host''s certificate, and refuses a bad token with Unauthorized' {
        $token = (Invoke-HostTokenCommand @('create', '--store', $tokens, '--name', 'remote-ps', '--scope', 'read-write')).Out[0]
        $c = Connect-WgServer -Uri $base -Token $token -CertificatePath $cert.CertPath
        $c.Kind | Should -Be 'Https'
        $k = (New-WgKey).PublicKey
        (Add-WgPeer -PublicKey $k -Name over-https).AllowedIPs | Should -Match '^10\.8\.0\.\d+/32$'
        Get-Content -Raw $conf | Should -Match ([regex]::Escape($k))
        Remove-WgPeer -PublicKey $k
        { Connect-WgServer -Uri $base -Token 'wgh_000000000000_nope' -CertificatePath $cert.CertPath } | Should -Throw -ErrorId 'Unauthorized*'
        # Without trusting the self-signed certificate the connection fails: TLS is verified.
        { Connect-WgServer -Uri $base -Token $token } | Should -Throw -ErrorId 'WgHostUnreachable*'
    }

    It 'returns to the in-process servers after Disconnect-WgServer, and fails clearly for a missing socket' {
        Connect-WgServer -Path $api | Out-Null
        @(Get-WgServer).Name | Should -Be @($name)
        Disconnect-WgServer
        @(Get-WgServer) | Should -HaveCount 0
        { Connect-WgServer -Path (Join-Path $dir 'missing.sock') } | Should -Throw -ErrorId 'WgHostUnreachable*'
    }
}

Describe 'docs/runbook.md against a gateway host in another process' -Skip:$skip {
    BeforeAll {
        Import-Module (Join-Path $root 'tools/HelpBuilder/HelpMarkdown.psm1') -Force
        $script:sections = [ordered]@{}
        foreach ($s in Get-MarkdownCodeSections (Join-Path $root 'docs/runbook.md')) { $sections[$s.Title] = @($s.Code) }
        $script:rdir = New-HostTestDir 'runbook'
        $script:rname = New-HostGatewayName
        $script:rhost = Start-RemoteHost $rdir $rname
        $script:rapi = $api; $script:rconf = $conf; $script:ruapi = $uapi
        $script:rs = [runspacefactory]::CreateRunspace()
        $rs.Open()
        $rs.SessionStateProxy.SetVariable('ErrorActionPreference', 'Stop')
        $rs.SessionStateProxy.SetVariable('ConfirmPreference', 'None')
        # Section 1's settings, as the in-process runbook test sets them, plus the host's API socket.
        foreach ($kv in @{ modulePath = $manifest; serverName = $rname; listenPort = 0; configPath = $rconf
                endpoint = 'vpn.example.com:51820'; handoverDir = (Join-Path $rdir 'handover'); apiSocket = $rapi }.GetEnumerator()) {
            $rs.SessionStateProxy.SetVariable($kv.Key, $kv.Value)
        }
        function Invoke-Runbook([string] $Code) {
            $ps = [powershell]::Create(); $ps.Runspace = $rs
            try {
                $out = $ps.AddScript($Code, $false).Invoke()
                if ($ps.Streams.Error.Count) { throw ($ps.Streams.Error | ForEach-Object { $_.ToString() }) -join "`n" }
                $out
            } finally { $ps.Dispose() }
        }
        function Get-RunbookVariable([string] $Name) { $rs.SessionStateProxy.GetVariable($Name) }
        # The host's equivalents: connect instead of Start-WgServer; the backup is the host's own file
        # (the API never hands out the private key); Stop-WgServer is the service manager's stop.
        function ConvertTo-HostCode([string] $Code) {
            $Code = $Code -replace '(?m)^Stop-WgServer[^\r\n]*$', ''
            $Code = $Code -replace 'Start-WgServer\b[^\r\n]*', '$(Connect-WgServer -Path $apiSocket | Out-Null; Get-WgServer -Name $serverName)'
            $Code -replace 'Export-WgConfig -Server \$serverName -Path \$backup', 'Copy-Item -LiteralPath $configPath -Destination $backup'
        }
        function Invoke-Section([string] $Title) { foreach ($b in $sections[$Title]) { Invoke-Runbook (ConvertTo-HostCode $b) | Out-Null } }
    }
    AfterAll {
        if ($rs) { $rs.Dispose() }
        if ($rhost) { Stop-WgTestHost $rhost 'TERM' | Out-Null; Remove-WgTestHost $rhost }
        Remove-Item -Recurse -Force $rdir -ErrorAction SilentlyContinue
    }

    It 'runs the procedure: connect, onboard, rotate, disable, restart the host, remove' {
        $sections.Keys | Should -Contain '3. Onboarding'
        Invoke-Section '2. Start the gateway with a persistent configuration'
        @(Get-WgServer) | Should -HaveCount 0   # nothing runs in this process: the runspace is connected
        (Invoke-Runbook 'Get-WgServer -Name $serverName').ConfigPath | Should -Be $rconf

        Invoke-Section '3. Onboarding'
        $names = @(Invoke-Runbook 'Get-WgPeer -Server $serverName').Name | Sort-Object
        $names | Should -Be @('alice-phone', 'bob-laptop', 'contractor-carol')
        $file = Get-Content -Raw $rconf
        foreach ($v in 'alice', 'bob') {
            $c = Get-RunbookVariable $v
            $file | Should -Match ([regex]::Escape($c.PublicKey))
            $null = $c.Config -match '(?m)^\s*PrivateKey\s*=\s*(\S+)'
            $file | Should -Not -Match ([regex]::Escape($Matches[1]))
        }

        $before = (Invoke-Runbook 'Get-WgServer -Name $serverName').PublicKey
        Invoke-Section '4. Rotating the gateway key'
        $after = (Invoke-Runbook 'Get-WgServer -Name $serverName').PublicKey
        $after | Should -Not -Be $before
        (Get-RunbookVariable 'rotated').PublicKey | Should -Be $after
        # The host (not this process) holds the new key: its file's private key belongs to the new public key.
        $fileKey = (Select-String -Path $rconf -Pattern '^\s*PrivateKey\s*=\s*(\S+)').Matches[0].Groups[1].Value
        Get-WgPublicKey -PrivateKey $fileKey | Should -Be $after

        Invoke-Section '5. Offboarding: disable first'
        (@(Invoke-Runbook 'Get-WgPeer -Server $serverName') | Where-Object Name -eq 'bob-laptop').Enabled | Should -BeFalse

        # 6: the host restarts (SIGTERM: file flushed, exit 0; a new start from the same file).
        Stop-WgTestHost $rhost 'TERM' -Seconds 5 | Should -BeGreaterOrEqual 0
        $rhost.Process.ExitCode | Should -Be 0
        $script:rhost = Start-RemoteHost $rdir $rname
        Invoke-Section '6. Restart'
        $s = Invoke-Runbook 'Get-WgServer -Name $serverName'
        $s.PublicKey | Should -Be $after
        $peers = @(Invoke-Runbook 'Get-WgPeer -Server $serverName')
        $peers.Name | Sort-Object | Should -Be @('alice-phone', 'bob-laptop', 'contractor-carol')
        ($peers | Where-Object Name -eq 'bob-laptop').Enabled | Should -BeFalse
        ($peers | Where-Object Name -eq 'contractor-carol').ExpiresAt | Should -BeGreaterThan ([DateTimeOffset]::Now.AddDays(29))

        Invoke-Section '7. Offboarding: remove later'
        @(Invoke-Runbook 'Get-WgPeer -Server $serverName').Name | Sort-Object | Should -Be @('alice-phone', 'contractor-carol')
        Get-Content -Raw $rconf | Should -Not -Match ([regex]::Escape((Get-RunbookVariable 'bob').PublicKey))
    }
}
