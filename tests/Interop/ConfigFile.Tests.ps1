# Config files against the real tools: what Export-WgConfig -Format ShowConf writes is accepted by
# `wg setconf` on a wireguard-go device, and that device's `wg showconf` reads back to the same peers.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'ConfigFile' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $manifest = $env:WGI_GATEWAY_MODULE
    if (-not $manifest) {
        $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
        $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
        if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) { throw "WireGuardGateway is not built: run ./build.ps1 Build first" }
    }
    Import-Module $manifest -Force

    # A peer as a comparable line: key, PSK presence, sorted AllowedIPs, endpoint, keepalive.
    function Format-PeerLine($p) {
        "$($p.PublicKey) psk=$($p.HasPresharedKey) ips=$((@($p.AllowedIPs) | Sort-Object) -join ',') ep=$($p.Endpoint) ka=$($p.PersistentKeepalive)"
    }
}

Describe 'Interop prerequisites (config file)' {
    It 'has wireguard-go, wg, ip, ping and root' -Skip:$skip {
        (Test-WgInteropPrerequisite).Missing | Should -BeNullOrEmpty
    }
}

Describe 'wg setconf / wg showconf and our config text' -Skip:$skip {
    BeforeAll {
        $net = New-WgTestNetwork
        $name = "gc$($net.RunId)"
        try {
            $server = Start-WgServer -Name $name -ListenPort 0 -Address "$($net.V4Prefix).1/24", "$($net.V6Prefix):1/64" -UapiPath (Join-Path $net.TempDir 'gw.sock')
            $a = Add-WgPeer -Server $name -PublicKey (New-WgKey).PublicKey -Name alpha -PresharedKey (New-WgPresharedKey) `
                -Endpoint '127.0.0.1:51999' -PersistentKeepalive 25
            $b = Add-WgPeer -Server $name -PublicKey (New-WgKey).PublicKey -Name beta -AllowedIPs "$($net.V4Prefix).128/25", '192.168.99.0/24'
            $c = Add-WgPeer -Server $name -PublicKey (New-WgKey).PublicKey -Name gamma
            Disable-WgPeer -Server $name -PublicKey $c.PublicKey
            $expected = Get-WgPeer -Server $name | Where-Object Enabled | ForEach-Object { Format-PeerLine $_ } | Sort-Object
            $showFile = Join-Path $net.TempDir 'show.conf'
            Export-WgConfig -Server $name -Format ShowConf -Path $showFile
            $ourText = Export-WgConfig -Server $name -Format ShowConf -IncludePrivateKey -IncludePresharedKey
            $ourPublicKey = $server.PublicKey
            # Free the port: the device takes over this configuration, ListenPort included.
            Stop-WgServer -Name $name
            $dev = New-WgGoDevice -Network $net -Role dev -PrivateKey (New-WgGoKeyPair).PrivateKey -Address "$($net.V4Prefix).50/24"
        } catch { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net; throw }
    }
    AfterAll { Get-WgServer | Stop-WgServer; Remove-WgTestNetwork $net }

    It 'wg setconf accepts the ShowConf export (key, port and every enabled peer)' {
        Invoke-WgNative wg 'setconf', $dev.Name, $showFile | Out-Null
        (Invoke-WgNative wg 'show', $dev.Name, 'public-key')[0].Trim() | Should -Be $ourPublicKey
        $peers = Invoke-WgNative wg 'show', $dev.Name, 'peers'
        $peers.Count | Should -Be 2
        $peers | Should -Not -Contain $c.PublicKey     # disabled: not in a wg(8) config
    }

    It 'wg showconf of that device has our layout and parses back to the same peers' {
        $theirs = (Invoke-WgNative wg 'showconf', $dev.Name) -join "`n"
        # Same text as ours, up to the order of AllowedIPs within a line (the device orders them itself)
        # and the order of the [Peer] sections (wireguard-go lists its peers in Go map order, which varies).
        $normLine = { param($l) if ($l -like 'AllowedIPs = *') { 'AllowedIPs = ' + ((($l -replace '^AllowedIPs = ') -split ', ' | Sort-Object) -join ', ') } else { $l } }
        $norm = { param($t)
            $sections = @(($t.Trim() -replace "`r", '') -split "`n`n" | ForEach-Object { (($_ -split "`n") | ForEach-Object { & $normLine $_ }) -join "`n" })
            (@($sections[0]) + @($sections | Select-Object -Skip 1 | Sort-Object)) -join "`n`n" }
        (& $norm $theirs) | Should -Be (& $norm $ourText)

        $check = "r$($net.RunId)"
        $null = Start-WgServer -Name $check -ListenPort 0 -Address '10.250.0.1/24' -UapiPath (Join-Path $net.TempDir 'rt.sock')
        $imported = Import-WgConfig -Server $check -Content $theirs
        $imported.Count | Should -Be 2
        (Get-WgPeer -Server $check | ForEach-Object { Format-PeerLine $_ } | Sort-Object) | Should -Be $expected
    }
}
