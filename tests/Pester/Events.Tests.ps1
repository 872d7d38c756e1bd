# Peer events of an in-process server as PowerShell engine events (WireGuardGateway.Peer*, in the
# runspace's event queue: Get-Event / Wait-Event, or Register-EngineEvent -Action): created, disabled,
# enabled, expired, removed, each with the WgPeer.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
    $script:server = Start-WgServer -Name "ev$([guid]::NewGuid().ToString('N').Substring(0, 8))" -ListenPort 0 -Address 10.77.0.1/24 -UapiPath (Join-Path ([IO.Path]::GetTempPath()) "wgev-$([guid]::NewGuid().ToString('N')).sock")
    $script:kinds = 'Created', 'Removed', 'Enabled', 'Disabled', 'Expired'
    # The next event of one kind for one key, waited for (Wait-Event's timeout), then taken off the queue.
    function Receive-PeerEvent([string] $Kind, [string] $Key) {
        $deadline = [DateTime]::UtcNow.AddSeconds(10)
        while ([DateTime]::UtcNow -lt $deadline) {
            $e = Get-Event -SourceIdentifier "WireGuardGateway.Peer$Kind" -ErrorAction SilentlyContinue | Where-Object { $_.SourceArgs[0].PublicKey -eq $Key } | Select-Object -First 1
            if ($e) { Remove-Event -EventIdentifier $e.EventIdentifier -ErrorAction SilentlyContinue; return $e }
            Wait-Event -SourceIdentifier "WireGuardGateway.Peer$Kind" -Timeout 1 | Out-Null
        }
    }
}

AfterAll {
    # Events still arriving (the bound test's 1,050 PeerRemoved) evict the oldest unread ones, so one
    # that Get-Event listed may be gone by the time Remove-Event asks for it.
    Get-Event -ErrorAction SilentlyContinue | Remove-Event -ErrorAction SilentlyContinue
    $server | Stop-WgServer
}

Describe 'Peer engine events of an in-process server' {
    It 'raises Created, Disabled, Enabled and Removed with the peer as it is after the change' {
        $k = (New-WgKey).PublicKey
        Add-WgPeer -Server $server -PublicKey $k -Name evented | Out-Null
        $c = Receive-PeerEvent Created $k
        $c | Should -Not -BeNullOrEmpty
        $c.Sender | Should -Be $server.Name
        $c.SourceArgs[0] | Should -BeOfType ([WgPowerShell.Models.WgPeer])
        $c.SourceArgs[0].Name | Should -Be 'evented'
        $c.SourceArgs[0].AllowedIPs | Should -Match '^10\.77\.0\.\d+/32$'
        Disable-WgPeer -Server $server -PublicKey $k
        (Receive-PeerEvent Disabled $k).SourceArgs[0].Enabled | Should -BeFalse
        Enable-WgPeer -Server $server -PublicKey $k
        (Receive-PeerEvent Enabled $k).SourceArgs[0].Enabled | Should -BeTrue
        Remove-WgPeer -Server $server -PublicKey $k
        (Receive-PeerEvent Removed $k).SourceArgs[0].PublicKey | Should -Be $k
    }

    It 'raises Expired when a peer''s time passes, and none for a change that did not happen' {
        $k = (New-WgKey).PublicKey
        Add-WgPeer -Server $server -PublicKey $k -ExpiresAt ([DateTimeOffset]::UtcNow.AddSeconds(1)) | Out-Null
        Receive-PeerEvent Created $k | Should -Not -BeNullOrEmpty
        $e = Receive-PeerEvent Expired $k
        $e | Should -Not -BeNullOrEmpty
        $e.SourceArgs[0].Enabled | Should -BeFalse
        Disable-WgPeer -Server $server -PublicKey $k   # already disabled: no change, no event
        Remove-WgPeer -Server $server -PublicKey $k
        Receive-PeerEvent Removed $k | Should -Not -BeNullOrEmpty
        @(Get-Event -SourceIdentifier WireGuardGateway.PeerDisabled -ErrorAction SilentlyContinue | Where-Object { $_.SourceArgs[0].PublicKey -eq $k }) | Should -HaveCount 0
    }

    It 'keeps only the newest 1,000 unread peer events in the queue, whatever the order they arrive in' {
        # Nobody reads these: without the bound, a bulk add would leave one event per peer in the queue
        # for the rest of the session.
        Get-Event -ErrorAction SilentlyContinue | Remove-Event -ErrorAction SilentlyContinue
        $keys = @(1..1050 | ForEach-Object { (New-WgKey).PublicKey })
        # Explicit /32s outside the server's /24, which has no room for 1,050 allocated addresses.
        $i = 0
        $keys | ForEach-Object { $i++; [pscustomobject]@{ PublicKey = $_; AllowedIPs = "10.78.$($i -shr 8).$($i -band 255)/32" } } | Add-WgPeer -Server $server | Out-Null
        $newest = [System.Collections.Generic.HashSet[string]]::new([string[]]$keys[50..1049])
        $deadline = [DateTime]::UtcNow.AddSeconds(30)
        do {
            $queued = @(Get-Event -SourceIdentifier WireGuardGateway.PeerCreated -ErrorAction SilentlyContinue | Where-Object Sender -eq $server.Name)
            $present = @($queued | Where-Object { $newest.Contains($_.SourceArgs[0].PublicKey) }).Count
            if ($present -eq 1000) { break }
            Wait-Event -SourceIdentifier WireGuardGateway.PeerCreated -Timeout 1 | Out-Null
        } while ([DateTime]::UtcNow -lt $deadline)
        $present | Should -Be 1000 -Because 'the newest 1,000 events all reach the queue'
        $queued | Should -HaveCount 1000
        @($queued | Where-Object { $_.SourceArgs[0].PublicKey -in $keys[0..49] }) | Should -HaveCount 0
        Get-Event -ErrorAction SilentlyContinue | Remove-Event -ErrorAction SilentlyContinue
        $keys | Remove-WgPeer -Server $server
        (Get-WgServer -Name $server.Name).PeerCount | Should -Be 0
    }
}
