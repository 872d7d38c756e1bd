# New-WgClient and ConvertTo-WgQRCode against a live gateway. (QR decoding: xunit ClientQrCodeTests;
# a real wireguard-go client from the generated config: tests/Interop/Client.Tests.ps1.)

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
    $script:Dir = (New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) "wgclient-$PID-$(Get-Random)")).FullName

    # Parses a wg-quick file into @{ 'Interface.PrivateKey' = ...; 'Peer.Endpoint' = ... }.
    function ConvertFrom-WgQuick([string]$Text) {
        $h = @{}; $section = ''
        foreach ($line in $Text -split "`n") {
            if ($line -match '^\[(\w+)\]$') { $section = $Matches[1]; continue }
            if ($line -match '^(\w+) = (.*)$') { $h["$section.$($Matches[1])"] = $Matches[2] }
        }
        $h
    }


}

AfterAll { Remove-Item -LiteralPath $Dir -Recurse -Force -ErrorAction Ignore }

Describe 'New-WgClient' {
    BeforeEach {
        $script:srv = Start-WgServer -Name "cl$PID" -ListenPort 0 -Address 10.40.0.1/24, fd00:40::1/64 -UapiPath (Join-Path $Dir "cl$(Get-Random).sock")
    }
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'adds a peer with the next pool addresses and returns the whole client config' {
        $null = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name first   # takes .2
        $c = New-WgClient -Name alice -Endpoint 'vpn.example.com:51820' -DNS 10.40.0.1, 1.1.1.1 -PersistentKeepalive 15
        $c.GetType().Name | Should -Be 'WgClient'
        $c.Name | Should -Be 'alice'
        $c.Server | Should -Be $srv.Name
        $c.Address | Should -Be @('10.40.0.3/32', 'fd00:40::3/128')
        $c.Endpoint | Should -Be 'vpn.example.com:51820'
        $c.HasPresharedKey | Should -BeFalse

        $cfg = ConvertFrom-WgQuick $c.Config
        Get-WgPublicKey -PrivateKey $cfg['Interface.PrivateKey'] | Should -Be $c.PublicKey
        $cfg['Interface.Address'] | Should -Be '10.40.0.3/32, fd00:40::3/128'
        $cfg['Interface.DNS'] | Should -Be '10.40.0.1, 1.1.1.1'
        $cfg['Peer.PublicKey'] | Should -Be $srv.PublicKey
        $cfg['Peer.Endpoint'] | Should -Be 'vpn.example.com:51820'
        $cfg['Peer.AllowedIPs'] | Should -Be '0.0.0.0/0, ::/0'
        $cfg['Peer.PersistentKeepalive'] | Should -Be '15'
        $cfg.ContainsKey('Peer.PresharedKey') | Should -BeFalse

        $peer = Get-WgPeer -Name alice
        $peer.PublicKey | Should -Be $c.PublicKey
        $peer.AllowedIPs | Should -Be $c.Address
        $peer.HasPresharedKey | Should -BeFalse
    }

    It 'adds a preshared key only with -WithPresharedKey, the same on both sides' {
        $c = New-WgClient -Name psk -Endpoint 203.0.113.9 -WithPresharedKey
        $c.HasPresharedKey | Should -BeTrue
        $cfg = ConvertFrom-WgQuick $c.Config
        $cfg['Peer.PresharedKey'] | Should -Match '^[A-Za-z0-9+/]{43}=$'
        $cfg['Peer.Endpoint'] | Should -Be "203.0.113.9:$($srv.ListenPort)"   # the port defaults to the server's
        (Get-WgPeer -Name psk).HasPresharedKey | Should -BeTrue
        (Get-UapiText $srv.UapiPath) | Should -Match ("preshared_key=" + (ConvertTo-Hex $cfg['Peer.PresharedKey']))
    }

    It 'routes only the gateway prefixes with -SplitTunnel, or the given -AllowedIPs' {
        $split = ConvertFrom-WgQuick (New-WgClient -Name split -Endpoint 192.0.2.1 -SplitTunnel).Config
        $split['Peer.AllowedIPs'] | Should -Be '10.40.0.0/24, fd00:40::/64'
        $given = ConvertFrom-WgQuick (New-WgClient -Name given -Endpoint 192.0.2.1 -AllowedIPs 10.40.0.0/24, 192.168.7.0/24).Config
        $given['Peer.AllowedIPs'] | Should -Be '10.40.0.0/24, 192.168.7.0/24'
    }

    It 'guesses a non-loopback endpoint with the server port and warns how to set it' {
        $c = New-WgClient -Name guess -WarningVariable wv -WarningAction SilentlyContinue
        $wv.Count | Should -Be 1
        "$($wv[0])" | Should -Match '-Endpoint'
        $c.Endpoint | Should -Match ":$($srv.ListenPort)$"
        $c.Endpoint | Should -Not -Match '^(127\.|\[::1\])'
    }

    It 'never gives the gateway the client private key (Get-WgPeer, UAPI get, views)' {
        $c = New-WgClient -Name secret -Endpoint 192.0.2.1 -WithPresharedKey
        $priv = (ConvertFrom-WgQuick $c.Config)['Interface.PrivateKey']
        $privHex = ConvertTo-Hex $priv
        $uapi = Get-UapiText $srv.UapiPath
        $uapi | Should -Match ("public_key=" + (ConvertTo-Hex $c.PublicKey))   # the peer is there...
        $uapi | Should -Not -Match $privHex                                     # ...its private key is not
        (Get-WgPeer | Format-List * | Out-String) | Should -Not -Match ([regex]::Escape($priv))
        (Get-WgServer | Format-List * | Out-String) | Should -Not -Match ([regex]::Escape($priv))
        ($c | Out-String) | Should -Not -Match ([regex]::Escape($priv))
        ($c | Format-List | Out-String) | Should -Not -Match ([regex]::Escape($priv))
        "$c" | Should -Be 'secret'
    }

    It 'takes names from the pipeline, by value and by property name' {
        $out = 'alice', 'bob' | New-WgClient -Endpoint 192.0.2.1
        $out.Name | Should -Be @('alice', 'bob')
        # ($out.Address would be the Array.Address method, not member enumeration)
        ($out | ForEach-Object Address | Select-Object -Unique).Count | Should -Be 4
        $more = [pscustomobject]@{ Name = 'carol' }, [pscustomobject]@{ Name = 'dave' } | New-WgClient -Endpoint 192.0.2.1
        $more.Name | Should -Be @('carol', 'dave')
        (Get-WgPeer).Count | Should -Be 4
    }

    It 'adds nothing with -WhatIf' {
        New-WgClient -Name ghost -Endpoint 192.0.2.1 -WhatIf | Should -BeNullOrEmpty
        Get-WgPeer | Should -BeNullOrEmpty
    }

    It 'makes a client whose name peers already have (names need not be unique), with a warning' {
        $null = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name a
        $null = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name a
        $out = 'a', 'other' | New-WgClient -Endpoint 192.0.2.1 -WarningVariable wv -WarningAction SilentlyContinue -ErrorVariable ev
        $out.Name | Should -Be @('a', 'other')
        $ev | Should -BeNullOrEmpty
        @($wv).Count | Should -Be 1
        "$($wv[0])" | Should -BeLike "*already had a peer named 'a'*"
        @(Get-WgPeer -Name a).Count | Should -Be 3
    }

    It 'reports an exhausted pool as AddressPoolExhausted' {
        $tiny = Start-WgServer -Name "tiny$PID" -ListenPort 0 -Address 10.41.0.1/30
        $null = New-WgClient -Server $tiny -Name one -Endpoint 192.0.2.1
        New-WgClient -Server $tiny -Name two -Endpoint 192.0.2.1 -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'AddressPoolExhausted,*'
    }

    It 'refuses a malformed -Endpoint or -DNS before adding anything' {
        { New-WgClient -Name bad -Endpoint 'host name:1' } | Should -Throw -ErrorId 'InvalidClientEndpoint*'
        { New-WgClient -Name bad -Endpoint 192.0.2.1 -DNS "1.1.1.1`nPostUp = rm -rf /" } | Should -Throw -ErrorId 'InvalidClientDns*'
        Get-WgPeer | Should -BeNullOrEmpty
    }

    It 'accepts an IPv6 endpoint with and without port' {
        (New-WgClient -Name v6a -Endpoint '2001:db8::1').Endpoint | Should -Be "[2001:db8::1]:$($srv.ListenPort)"
        (New-WgClient -Name v6b -Endpoint '[2001:db8::2]:443').Endpoint | Should -Be '[2001:db8::2]:443'
    }
}

Describe 'ConvertTo-WgQRCode' {
    BeforeAll { $script:srv = Start-WgServer -Name "qr$PID" -ListenPort 0 -Address 10.42.0.1/24 }
    AfterAll { Get-WgServer | Stop-WgServer }

    It 'renders terminal lines of half blocks inside a light quiet zone' {
        $c = New-WgClient -Name qr1 -Endpoint 192.0.2.1
        $lines = $c | ConvertTo-WgQRCode
        $lines.Count | Should -BeGreaterThan 10
        $lines | ForEach-Object { $_.Length | Should -Be $lines[0].Length }
        $lines[0] | Should -Match '^█+$'
        ($lines -join '') | Should -Match '^[█▀▄ ]+$'
    }

    It 'draws the dark modules instead with -LightBackground' {
        $c = New-WgClient -Name qrlight -Endpoint 192.0.2.1
        $dark = $c | ConvertTo-WgQRCode
        $light = $c | ConvertTo-WgQRCode -LightBackground
        $light[0] | Should -Match '^ +$'   # the quiet zone is the terminal's own light background
        $full = [string][char]0x2588; $upper = [string][char]0x2580; $lower = [string][char]0x2584
        $flip = @{ $full = ' '; ' ' = $full; $upper = $lower; $lower = $upper }
        # Every full line is the exact negative (the odd last line's lower half is outside the code).
        for ($i = 0; $i -lt $dark.Count - 1; $i++) {
            -join ($dark[$i].ToCharArray() | ForEach-Object { $flip[[string]$_] }) | Should -Be $light[$i]
        }
    }

    It 'renders the same code from the config text, as one string or line by line' {
        $c = New-WgClient -Name qr2 -Endpoint 192.0.2.1
        $fromObject = ($c | ConvertTo-WgQRCode) -join "`n"
        (ConvertTo-WgQRCode -InputObject $c.Config) -join "`n" | Should -Be $fromObject
        ($c.Config.TrimEnd("`n") -split "`n" | ConvertTo-WgQRCode) -join "`n" | Should -Be $fromObject
    }

    It 'writes a PNG with mode 0600 and outputs its FileInfo' {
        $c = New-WgClient -Name qr3 -Endpoint 192.0.2.1
        $path = Join-Path $Dir 'qr3.png'
        $f = $c | ConvertTo-WgQRCode -OutFile $path -PixelsPerModule 4
        $f | Should -BeOfType ([System.IO.FileInfo])
        $f.FullName | Should -Be $path
        $bytes = [System.IO.File]::ReadAllBytes($path)
        [System.Text.Encoding]::ASCII.GetString($bytes, 1, 3) | Should -Be 'PNG'
        if (-not $IsWindows) { [System.IO.File]::GetUnixFileMode($path) | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite') }
    }

    It 'narrows an existing file to 0600 before writing the key into it' {
        if ($IsWindows) { Set-ItResult -Skipped -Because 'Unix file modes'; return }
        $path = Join-Path $Dir 'existing.png'
        Set-Content -Path $path -Value 'old'
        [System.IO.File]::SetUnixFileMode($path, [System.IO.UnixFileMode]'UserRead, UserWrite, GroupRead, OtherRead')
        $null = New-WgClient -Name qr4 -Endpoint 192.0.2.1 | ConvertTo-WgQRCode -OutFile $path
        [System.IO.File]::GetUnixFileMode($path) | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
    }

    It 'takes a deserialized WgClient (Export-Clixml / Import-Clixml) by its Config' {
        $c = New-WgClient -Name qr5 -Endpoint 192.0.2.1
        $xml = Join-Path $Dir 'qr5.xml'
        $c | Export-Clixml -Path $xml
        $back = Import-Clixml -Path $xml
        $back.GetType().Name | Should -Not -Be 'WgClient'
        ($back | ConvertTo-WgQRCode) -join "`n" | Should -Be (($c | ConvertTo-WgQRCode) -join "`n")
    }

    It 'refuses other input types' {
        42 | ConvertTo-WgQRCode -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'UnsupportedQRInput,*'
    }
}
