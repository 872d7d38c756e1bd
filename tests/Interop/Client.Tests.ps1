# New-WgClient end to end: the Config it returns brings up a real wireguard-go client the way wg-quick
# does (`wg-quick strip` into `wg setconf`, the Address on the interface, a route per AllowedIPs), and
# that client reaches the gateway. Then Set-WgServer rotates the gateway key: clients are cut off
# until they take the new public key, as the runbook says.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $noWgQuick = -not (Get-Command wg-quick -ErrorAction Ignore)
    $skip = ((-not $prereq.Ok) -or $noWgQuick) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Client' -Missing (@($prereq.Missing) + @(if ($noWgQuick) { 'wg-quick' })) }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force

    function ConvertFrom-WgQuick([string]$Text) {
        $h = @{}; $section = ''
        foreach ($line in $Text -split "`n") {
            if ($line -match '^\[(\w+)\]$') { $section = $Matches[1]; continue }
            if ($line -match '^(\w+) = (.*)$') { $h["$section.$($Matches[1])"] = $Matches[2] }
        }
        $h
    }

    # A wireguard-go client from a WgClient's Config, set up as wg-quick would: returns the device.
    function Start-ClientFromConfig($Network, [string]$Role, $Client) {
        $cfg = ConvertFrom-WgQuick $Client.Config
        $addresses = $cfg['Interface.Address'] -split ',\s*'
        $dev = New-WgGoDevice -Network $Network -Role $Role -PrivateKey $cfg['Interface.PrivateKey'] -Address $addresses
        $file = Join-Path $Network.TempDir "$($dev.Name).conf"
        [System.IO.File]::WriteAllText($file, $Client.Config)
        [System.IO.File]::SetUnixFileMode($file, [System.IO.UnixFileMode]'UserRead, UserWrite')
        $stripped = (Invoke-WgNative wg-quick 'strip', $file) -join "`n"
        Invoke-WgNative wg 'setconf', $dev.Name, '/dev/stdin' -InputText $stripped | Out-Null
        foreach ($route in $cfg['Peer.AllowedIPs'] -split ',\s*') {
            Invoke-WgNative ip '-n', $dev.Namespace, 'route', 'add', $route, 'dev', $dev.Name | Out-Null
        }
        $dev
    }
}

Describe 'New-WgClient configs with wireguard-go' -Skip:$skip {
    BeforeAll {
        Import-WgGatewayModule
        $net = New-WgTestNetwork
        $serverName = "gc$($net.RunId)"
        try {
            $gw = Get-WgTestAddress $net 1
            $server = Start-WgServer -Name $serverName -ListenPort 0 -Address $gw.V4Cidr, $gw.V6Cidr -Egress None
            # Full tunnel with a PSK and an explicit endpoint; split tunnel with the guessed endpoint
            # (an address of this host, so reachable from wireguard-go's socket in the root namespace).
            $full = New-WgClient -Server $serverName -Name full -Endpoint 127.0.0.1 -WithPresharedKey
            $split = New-WgClient -Server $serverName -Name split -SplitTunnel -WarningAction SilentlyContinue
            $dev = @{
                full = Start-ClientFromConfig $net 'full' $full
                split = Start-ClientFromConfig $net 'split' $split
            }
        } catch {
            Remove-WgGatewayTestRun -ServerName $serverName -Network $net
            throw
        }
    }
    AfterAll {
        Remove-WgGatewayTestRun -ServerName $serverName -Network $net
        Get-Module WireGuardGateway | Remove-Module -ErrorAction Ignore
    }

    It 'wireguard-go took the config as written: the gateway key, endpoint, PSK and AllowedIPs' {
        $peers = @(Get-WgGoPeerStat $dev.full)
        $peers.Count | Should -Be 1
        $peers[0].PublicKey | Should -Be $server.PublicKey
        (Invoke-WgNative wg 'show', $dev.full.Name, 'allowed-ips') -join ' ' | Should -Match '0\.0\.0\.0/0 ::/0'
        (Invoke-WgNative wg 'show', $dev.full.Name, 'preshared-keys') -join ' ' |
            Should -Match ([regex]::Escape((ConvertFrom-WgQuick $full.Config)['Peer.PresharedKey']))
        (Invoke-WgNative wg 'show', $dev.split.Name, 'allowed-ips') -join ' ' | Should -Match ([regex]::Escape($gw.V4Net))
    }

    It 'both clients handshake and ping the gateway over IPv4 and IPv6' {
        foreach ($r in 'full', 'split') {
            (Test-Ping $dev[$r].Namespace $gw.V4 -Count 3 -MinReceived 3 -Deadline 10).Success | Should -BeTrue -Because "$r pings $($gw.V4)"
            (Test-Ping $dev[$r].Namespace $gw.V6 -Count 3 -MinReceived 3 -Deadline 10).Success | Should -BeTrue -Because "$r pings $($gw.V6)"
        }
        foreach ($c in $full, $split) {
            Wait-WgCondition { $null -ne (Get-WgPeer -Server $serverName -PublicKey $c.PublicKey).LatestHandshake } -TimeoutSeconds 10 |
                Should -BeTrue
        }
        (Get-WgPeer -Server $serverName -Name full).HasPresharedKey | Should -BeTrue
    }

    It 'the split-tunnel client reaches the full-tunnel client through the gateway' {
        $target = ($full.Address | Where-Object { $_ -notmatch ':' }) -replace '/32$', ''
        (Test-Ping $dev.split.Namespace $target -Count 3 -MinReceived 3 -Deadline 10).Success | Should -BeTrue
    }

    It 'Set-WgServer -PrivateKey cuts clients off until they take the new public key' {
        $new = New-WgKey
        Set-WgServer -Name $serverName -PrivateKey $new.PrivateKey -Confirm:$false
        (Get-WgServer -Name $serverName).PublicKey | Should -Be $new.PublicKey
        (Get-WgPeer -Server $serverName).Count | Should -Be 2
        # The old key opens no session: the next handshake (after the dropped one) is refused.
        (Test-Ping $dev.full.Namespace $gw.V4 -Count 6 -Interval 1 -Deadline 7).Received | Should -Be 0
        # The runbook's next step: the client gets the gateway's new public key.
        $cfg = ConvertFrom-WgQuick $full.Config
        Invoke-WgNative wg 'set', $dev.full.Name, 'peer', $server.PublicKey, 'remove' | Out-Null
        Invoke-WgNative wg 'set', $dev.full.Name, 'peer', $new.PublicKey, 'preshared-key', '/dev/stdin', 'allowed-ips', ($cfg['Peer.AllowedIPs'] -replace '\s', ''),
            'endpoint', $cfg['Peer.Endpoint'] -InputText $cfg['Peer.PresharedKey'] | Out-Null
        (Test-Ping $dev.full.Namespace $gw.V4 -Count 3 -MinReceived 3 -Deadline 10).Success | Should -BeTrue
    }
}
