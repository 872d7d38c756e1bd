# The peer life cycle: Disable-WgPeer / Enable-WgPeer, expiry, and Set-WgPeer keeping the session.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
    $script:Run = "wgl$PID-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
    $script:Dir = (New-Item -ItemType Directory -Path (Join-Path ([IO.Path]::GetTempPath()) $Run)).FullName

}

AfterAll { Remove-Item -Recurse -Force $Dir -ErrorAction SilentlyContinue }

Describe 'Disable-WgPeer and Enable-WgPeer' {
    BeforeEach { $null = Start-WgServer -ListenPort 0 -Address 10.72.0.1/24 -UapiPath (Join-Path $Dir "a$([guid]::NewGuid().ToString('N').Substring(0, 6)).sock") }
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'disables peers from the pipeline, keeps them listed with their addresses reserved, and enables them again' {
        $peers = 1..3 | ForEach-Object { Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name "p$_" }
        $peers[0..1] | Disable-WgPeer
        $all = Get-WgPeer
        $all.Count | Should -Be 3
        (Get-WgPeer -Name p1).Enabled | Should -BeFalse
        (Get-WgPeer -Name p2).Enabled | Should -BeFalse
        (Get-WgPeer -Name p3).Enabled | Should -BeTrue
        (Get-WgPeer -PublicKey $peers[0].PublicKey).AllowedIPs | Should -Be $peers[0].AllowedIPs
        # The address stays reserved while disabled.
        Add-WgPeer -PublicKey (New-WgKey).PublicKey -AllowedIPs $peers[0].AllowedIPs -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'AllowedIPsOverlap*'
        $back = Enable-WgPeer -PublicKey $peers[0].PublicKey -PassThru
        $back.Enabled | Should -BeTrue
        $back.Name | Should -Be 'p1'
        (Get-WgPeer -Name p1).Enabled | Should -BeTrue
        # Removing a disabled peer frees its address.
        Remove-WgPeer -PublicKey $peers[1].PublicKey -Confirm:$false
        Get-WgPeer -Name p2 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        (Add-WgPeer -PublicKey (New-WgKey).PublicKey -AllowedIPs $peers[1].AllowedIPs).AllowedIPs | Should -Be $peers[1].AllowedIPs
    }

    It 'supports -WhatIf and reports an unknown key per item' {
        $p = Add-WgPeer -PublicKey (New-WgKey).PublicKey
        Disable-WgPeer -PublicKey $p.PublicKey -WhatIf
        (Get-WgPeer).Enabled | Should -BeTrue
        $unknown = (New-WgKey).PublicKey
        Disable-WgPeer -PublicKey $unknown, $p.PublicKey -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerNotFound*'
        (Get-WgPeer).Enabled | Should -BeFalse
    }
}

Describe 'Expiry' {
    BeforeEach { $null = Start-WgServer -ListenPort 0 -Address 10.73.0.1/24 -UapiPath (Join-Path $Dir "e$([guid]::NewGuid().ToString('N').Substring(0, 6)).sock") }
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'disables a peer automatically at its ExpiresAt' {
        $at = [DateTimeOffset]::UtcNow.AddMilliseconds(1500)
        $p = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name temp -ExpiresAt $at
        $p.ExpiresAt | Should -Be $at
        $p.Enabled | Should -BeTrue
        Wait-Until { -not (Get-WgPeer -Name temp).Enabled } | Should -BeTrue
        [DateTimeOffset]::UtcNow | Should -BeGreaterOrEqual $at
    }

    It 'Set-WgPeer sets and clears the expiry; both at once is an error' {
        $p = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name t
        $at = [DateTimeOffset]::UtcNow.AddDays(7)
        (Set-WgPeer -PublicKey $p.PublicKey -ExpiresAt $at -PassThru).ExpiresAt | Should -Be $at
        (Set-WgPeer -PublicKey $p.PublicKey -ClearExpiry -PassThru).ExpiresAt | Should -BeNullOrEmpty
        { Set-WgPeer -PublicKey $p.PublicKey -ClearExpiry -ExpiresAt $at -ErrorAction Stop } | Should -Throw -ErrorId 'ExpiryConflict*'
    }
}

Describe 'Sessions across life-cycle changes (two gateways on loopback)' {
    BeforeAll {
        $script:gw = Start-WgServer -Name gw -ListenPort 0 -Address 10.74.0.1/24 -UapiPath (Join-Path $Dir 'gw.sock')
        $script:cl = Start-WgServer -Name cl -ListenPort 0 -Address 10.74.0.2/32 -UapiPath (Join-Path $Dir 'cl.sock')
        # Only the client initiates at first (the gateway has no endpoint for it yet), so exactly one
        # handshake happens and a later one could only come from a dropped session.
        $null = Add-WgPeer -Server gw -PublicKey $cl.PublicKey -AllowedIPs 10.74.0.2/32
        $null = Add-WgPeer -Server cl -PublicKey $gw.PublicKey -AllowedIPs 10.74.0.1/32 -Endpoint "127.0.0.1:$($gw.ListenPort)" -PersistentKeepalive 1
    }
    AfterAll { Get-WgServer | Stop-WgServer }

    It 'Set-WgPeer changes the peer in place: traffic continues without a new handshake' {
        Wait-Until { $null -ne (Get-WgPeer -Server gw).LatestHandshake } -Seconds 30 | Should -BeTrue -Because 'the client handshakes with the gateway'
        $before = Get-WgPeer -Server gw
        $updated = Set-WgPeer -Server gw -PublicKey $cl.PublicKey -Name client -PersistentKeepalive 2 -PassThru
        $updated.Name | Should -Be 'client'
        # Another keepalive arrives over the same session...
        Wait-Until { (Get-WgPeer -Server gw).ReceivedBytes -ge $before.ReceivedBytes + 32 } -Seconds 30 | Should -BeTrue -Because 'keepalives keep arriving over the same session'
        # ...and no handshake was needed for them.
        (Get-WgPeer -Server gw).LatestHandshake | Should -Be $before.LatestHandshake
    }

    It 'a disabled peer gets no traffic, and once enabled it handshakes again' {
        Wait-Until { $null -ne (Get-WgPeer -Server gw).LatestHandshake } -Seconds 30 | Should -BeTrue
        # Give the gateway the client's endpoint and a keepalive, so that it can initiate after Enable.
        $null = Set-WgPeer -Server gw -PublicKey $cl.PublicKey -Endpoint "127.0.0.1:$($cl.ListenPort)" -PersistentKeepalive 1
        $first = (Get-WgPeer -Server gw).LatestHandshake
        Disable-WgPeer -Server gw -PublicKey $cl.PublicKey
        $p = Get-WgPeer -Server gw
        $p.Enabled | Should -BeFalse
        $p.LatestHandshake | Should -BeNullOrEmpty     # no session any more
        # The client keeps sending keepalives; nothing comes back for 3 s.
        $rx = (Get-WgPeer -Server cl).ReceivedBytes
        Start-Sleep -Seconds 3
        (Get-WgPeer -Server cl).ReceivedBytes | Should -Be $rx
        Enable-WgPeer -Server gw -PublicKey $cl.PublicKey
        # The gateway has the endpoint and a keepalive: it initiates a fresh handshake.
        Wait-Until { (Get-WgPeer -Server gw).LatestHandshake -gt $first } -Seconds 30 | Should -BeTrue
    }
}
