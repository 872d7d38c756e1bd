BeforeAll {
    $script:Manifest = Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1'
    Import-Module $Manifest -Force

    # True when nothing holds the UDP port on [::] (dual-stack, as the engine binds).
    function Test-UdpPortFree([int] $Port) {
        $s = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetworkV6, 'Dgram', 'Udp')
        try { $s.DualMode = $true; $s.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::IPv6Any, $Port)); return $true }
        catch [System.Net.Sockets.SocketException] { return $false }
        finally { $s.Dispose() }
    }
}

Describe 'Servers' {
    AfterEach {
        Get-WgServer | Stop-WgServer
    }

    Describe 'Start-WgServer' {
        It 'starts with the defaults and reports the real port' {
            $s = Start-WgServer -ListenPort 0
            $s.GetType().Name | Should -Be 'WgServer'
            $s.Name | Should -Be 'wg0'
            $s.ListenPort | Should -BeGreaterThan 0
            $s.Address | Should -Be @('10.8.0.1/24')
            $s.Backend | Should -Be 'Userspace'
            $s.Egress | Should -Be 'Userspace'
            $s.State | Should -Be 'Running'
            $s.PeerCount | Should -Be 0
            $s.StartedAt | Should -BeOfType ([DateTimeOffset])
            $s.ReceivedBytes | Should -Be 0
            $s.SentBytes | Should -Be 0
            $s.PublicKey.Length | Should -Be 44
            # One snapshot with every engine counter: each drop reason (all zero yet) and the egress's counters.
            $s.Metrics.ReceivedBytes | Should -Be 0
            $s.Metrics.Drops.Count | Should -BeGreaterThan 5
            @($s.Metrics.Drops.Values | Where-Object { $_ -ne 0 }).Count | Should -Be 0
            $s.Metrics.Egress.Count | Should -BeGreaterThan 0
            $s.Metrics.Tun | Should -BeNullOrEmpty
            Test-UdpPortFree $s.ListenPort | Should -BeFalse
            @($s.PSObject.Properties.Name) | Should -Be @('Name', 'PublicKey', 'ListenPort', 'BindAddress', 'MTU', 'Address', 'Backend', 'Egress', 'PeerCount', 'State', 'StartedAt', 'ReceivedBytes', 'SentBytes', 'Stats', 'EgressStats', 'Metrics', 'EgressRules', 'PeerIsolation', 'ConfigPath', 'ConfigReadOnly', 'UapiPath')
        }

        It 'uses a given private key, and never shows it (properties, views, JSON, verbose)' {
            $k = New-WgKey
            $verbose = Start-WgServer -Name kx -ListenPort 0 -PrivateKey $k.PrivateKey -Address 10.60.0.1/24, fd00:60::1/64 -Verbose 4>&1
            $s = $verbose | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }
            $s.PublicKey | Should -Be $k.PublicKey
            $s.Address | Should -Be @('10.60.0.1/24', 'fd00:60::1/64')
            ($verbose | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Count | Should -BeGreaterThan 0
            ($verbose | Out-String) | Should -Not -Match ([regex]::Escape($k.PrivateKey))
            ($s | Format-List * | Out-String) | Should -Not -Match ([regex]::Escape($k.PrivateKey))
            ($s | Format-Table * | Out-String) | Should -Not -Match ([regex]::Escape($k.PrivateKey))
            ($s | Out-String) | Should -Not -Match ([regex]::Escape($k.PrivateKey))
            ($s | ConvertTo-Json) | Should -Not -Match ([regex]::Escape($k.PrivateKey))
            $s.PSObject.Properties.Name | Should -Not -Contain 'PrivateKey'
        }

        It 'shows the table view columns' {
            $s = Start-WgServer -ListenPort 0
            $text = $s | Out-String
            $text | Should -Match 'Name\s+State\s+Port\s+Address\s+Peers\s+Transfer'
            $text | Should -Match "wg0\s+Running\s+$($s.ListenPort)\s+10\.8\.0\.1/24\s+0\s+0 B / 0 B"
        }

        It 'refuses a taken port with ListenPortInUse' {
            $a = Start-WgServer -Name a -ListenPort 0
            Start-WgServer -Name b -ListenPort $a.ListenPort -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'ListenPortInUse,*'
            $ev[0].CategoryInfo.Category | Should -Be 'ResourceUnavailable'
            (Get-WgServer).Name | Should -Be @('a')
        }

        It 'refuses a second server of the same name' {
            $null = Start-WgServer -Name dup -ListenPort 0
            Start-WgServer -Name dup -ListenPort 0 -ErrorVariable ev -ErrorAction SilentlyContinue
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'ServerAlreadyExists,*'
        }

        It 'refuses a malformed private key and a malformed address at binding' {
            { Start-WgServer -ListenPort 0 -PrivateKey 'abc' } | Should -Throw -ErrorId 'ParameterArgumentValidationError*' -ExpectedMessage "*'PrivateKey'*"
            { Start-WgServer -ListenPort 0 -Address '10.8.0.1/33' } | Should -Throw -ErrorId 'ParameterArgumentValidationError*' -ExpectedMessage "*'Address'*"
            Get-WgServer | Should -BeNullOrEmpty
        }

        It 'refuses the whole address space as the gateway''s -Address' -ForEach @(@{ A = '0.0.0.0/0' }, @{ A = '::/0' }) {
            Start-WgServer -ListenPort 0 -Address $A -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'InvalidServerAddress,*'
            Get-WgServer | Should -BeNullOrEmpty
        }

        It '-BindAddress binds the UDP socket to that address only' {
            $all = Start-WgServer -Name all -ListenPort 0
            $all.BindAddress | Should -BeNullOrEmpty
            # Bound to every address: the port is taken on 127.0.0.2 too.
            { [System.Net.Sockets.UdpClient]::new([System.Net.IPEndPoint]::new([ipaddress]'127.0.0.2', $all.ListenPort)).Dispose() } | Should -Throw
            $one = Start-WgServer -Name one -ListenPort 0 -BindAddress 127.0.0.1
            $one.BindAddress | Should -Be '127.0.0.1'
            $other = [System.Net.Sockets.UdpClient]::new([System.Net.IPEndPoint]::new([ipaddress]'127.0.0.2', $one.ListenPort))
            $other.Dispose()   # the same port on another address was free
            { Start-WgServer -Name bad -ListenPort 0 -BindAddress 'not-an-ip' } | Should -Throw -ErrorId 'CannotConvertArgument*' -ExpectedMessage "*'BindAddress'*"
        }

        It '-MTU sets the tunnel MTU, is written to the config file and restored from it' {
            $dir = Join-Path ([IO.Path]::GetTempPath()) "wgmtu$PID-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
            $null = New-Item -ItemType Directory $dir
            try {
                $cfg = Join-Path $dir 'wg0.conf'
                (Start-WgServer -ListenPort 0 -UapiPath (Join-Path $dir 's.sock')).MTU | Should -Be 1420
                Stop-WgServer -Name wg0
                $s = Start-WgServer -ListenPort 0 -MTU 1280 -ConfigPath $cfg -UapiPath (Join-Path $dir 's.sock')
                $s.MTU | Should -Be 1280
                Get-Content -Raw $cfg | Should -Match '(?m)^MTU = 1280$'
                (Export-WgConfig) | Should -Match '(?m)^MTU = 1280$'
                Stop-WgServer -Name wg0
                (Start-WgServer -ListenPort 0 -ConfigPath $cfg -UapiPath (Join-Path $dir 's.sock')).MTU | Should -Be 1280
                { Start-WgServer -Name tiny -ListenPort 0 -MTU 500 } | Should -Throw -ErrorId 'ParameterArgumentValidationError*' -ExpectedMessage "*'MTU'*"
            } finally {
                Get-WgServer | Stop-WgServer
                Remove-Item $dir -Recurse -Force
            }
        }

        It '-WhatIf starts nothing and binds no port' {
            $probe = [System.Net.Sockets.UdpClient]::new(0); $port = $probe.Client.LocalEndPoint.Port; $probe.Dispose()
            Start-WgServer -ListenPort $port -WhatIf | Should -BeNullOrEmpty
            Get-WgServer | Should -BeNullOrEmpty
            Test-UdpPortFree $port | Should -BeTrue
        }
    }

    Describe 'Get-WgServer / Stop-WgServer' {
        It 'lists by name with wildcards and errors for an unknown exact name' {
            $null = Start-WgServer -Name east1 -ListenPort 0
            $null = Start-WgServer -Name west1 -ListenPort 0
            (Get-WgServer).Name | Should -Be @('east1', 'west1')
            (Get-WgServer -Name e*).Name | Should -Be @('east1')
            Get-WgServer -Name nope -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'WgServerNotFound,*'
            $ev[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        }

        It 'stops from the pipeline and frees the port' {
            $s = Start-WgServer -ListenPort 0
            Test-UdpPortFree $s.ListenPort | Should -BeFalse
            $out = $s | Stop-WgServer -PassThru
            $out.State | Should -Be 'Stopped'
            Get-WgServer | Should -BeNullOrEmpty
            Test-UdpPortFree $s.ListenPort | Should -BeTrue
        }

        It '-WhatIf stops nothing' {
            $s = Start-WgServer -ListenPort 0
            Stop-WgServer -Name wg0 -WhatIf
            (Get-WgServer).State | Should -Be 'Running'
            Test-UdpPortFree $s.ListenPort | Should -BeFalse
        }

        It 'needs a name when several servers run' {
            $null = Start-WgServer -Name a -ListenPort 0
            $null = Start-WgServer -Name b -ListenPort 0
            { Stop-WgServer } | Should -Throw -ErrorId 'WgServerAmbiguous*'
            (Get-WgServer).Count | Should -Be 2
        }
    }

    Describe 'Wait-WgServer' {
        It 'times out with WaitTimeout while the server runs' {
            $s = Start-WgServer -ListenPort 0
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $s | Wait-WgServer -Timeout 1 -ErrorVariable ev -ErrorAction SilentlyContinue
            $sw.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.9
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'WaitTimeout,*'
            (Get-WgServer).State | Should -Be 'Running'
        }

        It 'blocks, then stops waiting when the pipeline is stopped (Ctrl+C)' {
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript("Import-Module '$Manifest'; `$s = Start-WgServer -ListenPort 0; Write-Information ready; `$s | Wait-WgServer")
                $async = $ps.BeginInvoke()
                $deadline = [DateTime]::UtcNow.AddSeconds(30)
                while ($ps.Streams.Information.Count -eq 0 -and -not $async.IsCompleted -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
                $ps.Streams.Error.Count | Should -Be 0   # (enumerating an open PSDataCollection would block)
                $ps.Streams.Information.Count | Should -Be 1
                # Still blocked a second later: Wait-WgServer does not return while the server runs.
                $async.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(1)) | Should -BeFalse
                $stop = $ps.BeginStop($null, $null)
                $stop.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(10)) | Should -BeTrue
                $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            }
            finally { $ps.Dispose() }
        }
    }
}
