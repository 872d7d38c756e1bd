# Client isolation, tags and ACLs on the cmdlets: Set-WgPeer -Tag/-Acl, Set-WgTag, Get-WgTag,
# Start-/Set-WgServer -PeerIsolation, and their persistence with -ConfigPath (docs/policy.md).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
    $script:Dir = (New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) "wgpolicy-$PID-$(Get-Random)")).FullName
}

AfterAll { Remove-Item -LiteralPath $Dir -Recurse -Force -ErrorAction Ignore }

Describe 'Tags, ACLs and isolation' {
    BeforeEach {
        $script:srv = Start-WgServer -Name "pol$PID" -ListenPort 0 -Address 10.44.0.1/24 -UapiPath (Join-Path $Dir "s$(Get-Random).sock")
        $script:peer = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name 'p1'
    }
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'sets a peer''s tags and ordered ACL, shows them on Get-WgPeer and applies them in the engine' {
        Set-WgPeer -PublicKey $peer.PublicKey -Tag 'staff,ops' -Acl 'allow 10.1.0.5/32 tcp 443', 'deny any'
        $p = Get-WgPeer -PublicKey $peer.PublicKey
        $p.Tag | Should -Be @('staff', 'ops')
        $p.Acl | Should -Be @('allow 10.1.0.5/32 tcp 443', 'deny 0.0.0.0/0', 'deny ::/0')
        (Get-WgEngineServer $srv).Stats | Should -Not -BeNullOrEmpty
        Set-WgPeer -PublicKey $peer.PublicKey -Acl @() -Tag @()
        $p = Get-WgPeer -PublicKey $peer.PublicKey
        $p.Tag | Should -BeNullOrEmpty
        $p.Acl | Should -BeNullOrEmpty
    }

    It 'refuses a malformed rule or tag at binding and changes nothing: <Why>' -ForEach @(
        @{ Why = 'verb'; Params = @{ Acl = 'permit 10.0.0.0/8' } }
        @{ Why = 'prefix'; Params = @{ Acl = 'allow 10.0.0.0/33' } }
        @{ Why = 'port without protocol'; Params = @{ Acl = 'allow 10.0.0.0/8 any 80' } }
        @{ Why = 'tag with a space'; Params = @{ Tag = 'two words' } }
    ) {
        { Set-WgPeer -PublicKey $peer.PublicKey @Params } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        (Get-WgPeer -PublicKey $peer.PublicKey).Acl | Should -BeNullOrEmpty
        (Get-WgPeer -PublicKey $peer.PublicKey).Tag | Should -BeNullOrEmpty
    }

    It 'lists tags with their rules and members, and Set-WgTag changes a tag''s rules' {
        Set-WgPeer -PublicKey $peer.PublicKey -Tag guests
        Set-WgTag -Name guests -Acl 'deny 10.0.0.0/8' -PassThru | ForEach-Object {
            $_.Name | Should -Be 'guests'
            $_.PeerCount | Should -Be 1
            $_.Acl | Should -Be @('deny 10.0.0.0/8')
        }
        Set-WgTag -Name empty -Acl 'allow any icmp'
        (Get-WgTag).Name | Should -Be @('empty', 'guests')
        (Get-WgTag -Name gu*).PeerCount | Should -Be 1
        Set-WgTag -Name guests -Acl @()
        (Get-WgTag -Name guests).Acl | Should -BeNullOrEmpty
        Set-WgTag -Name empty -Acl 'deny any' -WhatIf
        (Get-WgTag -Name empty).Acl | Should -Be @('allow 0.0.0.0/0 icmp', 'allow ::/0 icmp')
    }

    It 'takes the server of the tag cmdlets from a piped WgServer when two run, never its name for the tag''s' {
        $other = Start-WgServer -Name "pol2$PID" -ListenPort 0 -Address 10.45.0.1/24 -UapiPath (Join-Path $Dir "o$(Get-Random).sock")
        Get-WgServer $other.Name | Set-WgTag -Name staff -Acl 'allow 10.0.0.0/8 tcp 443'
        (Get-WgServer $other.Name | Get-WgTag).Name | Should -Be @('staff')
        @(Get-WgServer $srv.Name | Get-WgTag) | Should -HaveCount 0
        Get-WgServer $other.Name | Set-WgTag -Acl 'deny any' -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'TagNameMissing,*'
        (Get-WgServer $other.Name | Get-WgTag).Name | Should -Be @('staff')
    }

    It 'turns isolation on at start and on and off at runtime' {
        $srv.PeerIsolation | Should -BeFalse
        Set-WgServer -PeerIsolation
        (Get-WgServer).PeerIsolation | Should -BeTrue
        (Get-WgEngineServer $srv).PeerIsolation | Should -BeTrue
        Set-WgServer -PeerIsolation:$false
        (Get-WgServer).PeerIsolation | Should -BeFalse
        Get-WgServer | Stop-WgServer
        (Start-WgServer -ListenPort 0 -PeerIsolation -UapiPath (Join-Path $Dir "i$(Get-Random).sock")).PeerIsolation | Should -BeTrue
    }

    It 'persists isolation, tag rules, tags and ACLs with -ConfigPath and restores them after a restart' {
        Get-WgServer | Stop-WgServer
        $conf = Join-Path $Dir "p$(Get-Random).conf"
        Start-WgServer -ListenPort 0 -ConfigPath $conf -PeerIsolation -UapiPath (Join-Path $Dir "c$(Get-Random).sock") | Out-Null
        $k = (New-WgKey).PublicKey
        Add-WgPeer -PublicKey $k | Out-Null
        Set-WgPeer -PublicKey $k -Tag guests -Acl 'allow 10.1.0.5/32 tcp 443'
        Set-WgTag -Name guests -Acl 'deny 10.0.0.0/8'
        $text = Get-Content -Raw -LiteralPath $conf
        $text | Should -Match '(?m)^#! PeerIsolation = true$'
        $text | Should -Match '(?m)^#! TagAcl = guests: deny 10\.0\.0\.0/8$'
        $text | Should -Match '(?m)^#! Tags = guests$'
        $text | Should -Match '(?m)^#! Acl = allow 10\.1\.0\.5/32 tcp 443$'
        Get-WgServer | Stop-WgServer
        $s = Start-WgServer -ListenPort 0 -ConfigPath $conf -UapiPath (Join-Path $Dir "d$(Get-Random).sock")
        $s.PeerIsolation | Should -BeTrue
        (Get-WgTag -Name guests).Acl | Should -Be @('deny 10.0.0.0/8')
        $p = Get-WgPeer -PublicKey $k
        $p.Tag | Should -Be @('guests')
        $p.Acl | Should -Be @('allow 10.1.0.5/32 tcp 443')
    }

    It 'sets and clears bandwidth limits and a quota, shown on Get-WgPeer' {
        Set-WgPeer -PublicKey $peer.PublicKey -UploadLimitMbps 20 -DownloadLimitMbps 5.5 -LimitBurstBytes 100000 -QuotaBytes 50GB -QuotaPeriod Week
        $p = Get-WgPeer -PublicKey $peer.PublicKey
        $p.UploadLimitMbps | Should -Be 20
        $p.DownloadLimitMbps | Should -Be 5.5
        $p.QuotaBytes | Should -Be 50GB
        $p.QuotaPeriod | Should -Be 'Week'
        $p.QuotaUsedBytes | Should -Be 0
        Set-WgPeer -PublicKey $peer.PublicKey -UploadLimitMbps 0 -QuotaBytes 0
        $p = Get-WgPeer -PublicKey $peer.PublicKey
        $p.UploadLimitMbps | Should -BeNullOrEmpty
        $p.DownloadLimitMbps | Should -Be 5.5
        $p.QuotaBytes | Should -BeNullOrEmpty
    }

    It 'refuses a bad limit or quota at binding and changes nothing: <Why>' -ForEach @(
        @{ Why = 'negative rate'; Params = @{ UploadLimitMbps = -1 }; Id = 'ParameterArgumentValidationError' }
        @{ Why = 'tiny burst'; Params = @{ DownloadLimitMbps = 1; LimitBurstBytes = 10 }; Id = 'ParameterArgumentValidationError' }
        @{ Why = 'negative quota'; Params = @{ QuotaBytes = -5 }; Id = 'ParameterArgumentValidationError' }
        @{ Why = 'unknown period'; Params = @{ QuotaBytes = 1GB; QuotaPeriod = 'Year' }; Id = 'CannotConvertArgumentNoMessage' }
    ) {
        { Set-WgPeer -PublicKey $peer.PublicKey @Params } | Should -Throw -ErrorId "$Id*"
        $p = Get-WgPeer -PublicKey $peer.PublicKey
        $p.UploadLimitMbps | Should -BeNullOrEmpty
        $p.QuotaBytes | Should -BeNullOrEmpty
    }

    It 'shows why a peer is disabled, and Enable-WgPeer clears it' {
        Disable-WgPeer -PublicKey $peer.PublicKey -Confirm:$false
        (Get-WgPeer -PublicKey $peer.PublicKey).DisabledReason | Should -Be 'Manual'
        Enable-WgPeer -PublicKey $peer.PublicKey
        (Get-WgPeer -PublicKey $peer.PublicKey).DisabledReason | Should -BeNullOrEmpty
    }
}
