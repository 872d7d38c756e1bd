# The default views: human texts in the tables, everything in the lists, never a private key.
# (The texts themselves: xunit WgDisplayTests.)

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
    $PSStyle.OutputRendering = 'PlainText'
}

Describe 'Default views' {
    BeforeAll {
        $script:gatewayKey = New-WgKey
        $script:srv = Start-WgServer -Name "fmt$PID" -ListenPort 0 -Address 10.44.0.1/24 -PrivateKey $gatewayKey.PrivateKey
        $script:client = New-WgClient -Name alice -Endpoint 192.0.2.1 -WithPresharedKey
        $script:clientKey = ([regex]::Match($client.Config, 'PrivateKey = (\S+)')).Groups[1].Value
        $script:psk = ([regex]::Match($client.Config, 'PresharedKey = (\S+)')).Groups[1].Value
        $script:pair = New-WgKey
    }
    AfterAll { Get-WgServer | Stop-WgServer }

    It 'shows the peer table with short key, "never" before a handshake, and transfer' {
        $text = Get-WgPeer | Out-String
        $text | Should -Match 'Name\s+PublicKey\s+AllowedIPs\s+Endpoint\s+Handshake\s+Transfer'
        $text | Should -Match ("alice\s+" + [regex]::Escape($client.PublicKey.Substring(0, 8) + [char]0x2026) + "\s+10\.44\.0\.2/32\s+never\s+0 B / 0 B")
    }

    It 'renders a handshake age in seconds and transfer in KiB/MiB' {
        $p = [WgPowerShell.Models.WgPeer]@{
            Server = 'x'; Name = 'synthetic'; PublicKey = $pair.PublicKey; AllowedIPs = [string[]]@('10.1.0.2/32')
            LatestHandshake = [DateTimeOffset]::UtcNow.AddSeconds(-42); ReceivedBytes = 1258291; SentBytes = 348160
        }
        $text = $p | Out-String
        # The Transfer column is narrow (the table fits 80 columns): "rx /" wraps over "tx".
        $text | Should -Match 'synthetic\s+\S+\s+10\.1\.0\.2/32\s+4[2-4] s ago\s+1\.2 MiB /\s*\r?\n\s+340 KiB'
        $p.LatestHandshake = [DateTimeOffset]::UtcNow.AddMinutes(-5).AddSeconds(-10)
        ($p | Out-String) | Should -Match '5 min ago'
        ($p | Format-List | Out-String) | Should -Match 'LatestHandshake\s+: .*\(5 min ago\)'
        ($p | Format-List | Out-String) | Should -Match 'Received\s+: 1\.2 MiB \(1,258,291 bytes\)'
    }

    It 'shows the server table with state, port, address, peers and traffic (egress in the list)' {
        $text = Get-WgServer | Out-String
        $text | Should -Match 'Name\s+State\s+Port\s+Address\s+Peers\s+Transfer \(rx / tx\)'
        $text | Should -Match "fmt$PID\s+Running\s+$($srv.ListenPort)\s+10\.44\.0\.1/24\s+1\s+0 B / 0 B"
    }

    It 'fits every default table and list into 80 columns without cutting a value' {
        $wide = Start-WgServer -Name "fmtwide$PID" -ListenPort 0 -Address 10.45.0.1/24, fd00:45::1/64
        try {
            $null = Add-WgPeer -Server $wide -PublicKey (New-WgKey).PublicKey -Name 'a-long-peer-name' -Endpoint '[2001:db8::1]:51820' `
                -AllowedIPs 10.45.0.50/32, fd00:45::50/128, 192.168.100.0/24
            $c = New-WgClient -Server $wide -Name 'bob-laptop-2026' -Endpoint 'vpn.example.com:51820' -WithPresharedKey -DNS 10.45.0.1
            $views = [ordered]@{
                'server table' = Get-WgServer | Out-String -Width 80
                'server list'  = Get-WgServer -Name $wide.Name | Format-List | Out-String -Width 80
                'peer table'   = Get-WgPeer -Server $wide | Out-String -Width 80
                'peer list'    = Get-WgPeer -Server $wide | Format-List | Out-String -Width 80
                'client table' = $c | Out-String -Width 80
                'client list'  = $c | Format-List | Out-String -Width 80
            }
            foreach ($v in $views.Keys) {
                foreach ($line in $views[$v] -split "\r?\n") {
                    $line.TrimEnd().Length | Should -BeLessOrEqual 79 -Because "$v line '$line'"
                    # An ellipsis only ever ends a short key (8 characters), never a cut value.
                    $line -replace '[A-Za-z0-9+/]{8}\u2026', '' | Should -Not -Match '\u2026' -Because "$v line '$line'"
                }
            }
            $views['server table'] | Should -Match 'Transfer \(rx / tx\)'
            $views['server table'] | Should -Match '0 B / 0 B'
            $views['peer table'] | Should -Match '\[2001:db8::1\]:51820'
            $views['peer table'] | Should -Match '192\.168\.100\.0/24'
            $views['client table'] | Should -Match 'vpn\.example\.com:51820'
            $views['client list'] | Should -Match 'HasPresharedKey\s+: True'
        } finally { Stop-WgServer -Name $wide.Name }
    }

    It 'shows the client table with name, key, address and endpoint' {
        $text = $client | Out-String
        $text | Should -Match 'Name\s+PublicKey\s+Address\s+Endpoint'
        $text | Should -Match ("alice\s+" + [regex]::Escape($client.PublicKey.Substring(0, 8) + [char]0x2026) + "\s+10\.44\.0\.2/32\s+192\.0\.2\.1:$($srv.ListenPort)")
    }

    It 'lists every field in the list views' {
        $peer = Get-WgPeer | Format-List | Out-String
        foreach ($f in 'Server', 'Name', 'PublicKey', 'AllowedIPs', 'Endpoint', 'LatestHandshake', 'Received', 'Sent', 'PersistentKeepalive', 'HasPresharedKey') {
            $peer | Should -Match "(?m)^$f\s+:"
        }
        $server = Get-WgServer | Format-List | Out-String
        foreach ($f in 'Name', 'State', 'PublicKey', 'ListenPort', 'Address', 'Backend', 'Egress', 'PeerCount', 'StartedAt', 'Received', 'Sent', 'ConfigPath', 'UapiPath') {
            $server | Should -Match "(?m)^$f\s+:"
        }
        $cl = $client | Format-List | Out-String
        foreach ($f in 'Server', 'Name', 'PublicKey', 'Address', 'Endpoint', 'DNS', 'AllowedIPs', 'PersistentKeepalive', 'HasPresharedKey') {
            $cl | Should -Match "(?m)^$f\s+:"
        }
        $cl | Should -Not -Match '(?m)^Config\s+:'
    }

    It 'never shows a private key, a preshared key or a client config in any default view' {
        $secrets = @($gatewayKey.PrivateKey, $clientKey, $psk, $pair.PrivateKey) | ForEach-Object { [regex]::Escape($_) }
        $objects = @((Get-WgServer), (Get-WgPeer), $client, $pair)
        foreach ($o in $objects) {
            foreach ($text in @(($o | Out-String), ($o | Format-Table | Out-String), ($o | Format-List | Out-String), "$o")) {
                foreach ($s in $secrets) { $text | Should -Not -Match $s }
                $text | Should -Not -Match '\[Interface\]'
            }
        }
        $pair | Out-String | Should -Match ([regex]::Escape($pair.PublicKey))
    }
}
