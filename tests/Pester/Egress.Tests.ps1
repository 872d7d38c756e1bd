BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
}

Describe 'Start-WgServer -Egress / -EgressAllow / -EgressDeny / -EgressUnprotected / -EgressLimit' {
    AfterEach {
        Get-WgServer | Stop-WgServer
    }

    It 'defaults to the userspace egress and shows its counters' {
        $s = Start-WgServer -ListenPort 0
        $s.Egress | Should -Be 'Userspace'
        $s.EgressStats | Should -Not -BeNullOrEmpty
        $s.EgressStats.UdpFlowsActive | Should -Be 0
        $s.EgressStats.Denied | Should -Be 0
        (Get-WgServer).EgressStats.UdpLimited | Should -Be 0
    }

    It 'has no egress counters with -Egress None' {
        $s = Start-WgServer -ListenPort 0 -Egress None
        $s.Egress | Should -Be 'None'
        $s.EgressStats | Should -BeNullOrEmpty
    }

    It 'starts with a valid -EgressAllow list' {
        $s = Start-WgServer -ListenPort 0 -EgressAllow 10.0.0.0/8, '192.0.2.0/24,2001:db8::/32'
        $s.State | Should -Be 'Running'
        $s.Egress | Should -Be 'Userspace'
    }

    It 'refuses a malformed -EgressAllow CIDR at binding: <Value>' -ForEach @(
        @{ Value = '10.0.0.0/33' }, @{ Value = 'not-a-cidr' }, @{ Value = '2001:db8::/129' }
    ) {
        { Start-WgServer -ListenPort 0 -EgressAllow $Value } |
            Should -Throw -ErrorId 'ParameterArgumentValidationError*' -ExpectedMessage "*'EgressAllow'*"
        Get-WgServer | Should -BeNullOrEmpty
    }

    It 'refuses -EgressAllow where no userspace egress runs' {
        { Start-WgServer -ListenPort 0 -Egress None -EgressAllow 10.0.0.0/8 } | Should -Throw -ErrorId 'EgressAllowNotApplicable*'
        { Start-WgServer -ListenPort 0 -Backend Uapi -UapiPath /nonexistent/wg.sock -Egress Userspace } | Should -Throw -ErrorId 'EgressNotApplicable*'
        Get-WgServer | Should -BeNullOrEmpty
    }

    It 'shows the default rules: no exceptions, no additions, protected' {
        $s = Start-WgServer -ListenPort 0
        $s.EgressRules.Allow | Should -BeNullOrEmpty
        $s.EgressRules.Deny | Should -BeNullOrEmpty
        $s.EgressRules.Unprotected | Should -BeFalse
    }

    It 'takes -EgressAllow as exceptions and -EgressDeny as additions' {
        $s = Start-WgServer -ListenPort 0 -EgressAllow 10.1.0.0/16 -EgressDeny '8.8.8.0/24,2001:4860::/32'
        @($s.EgressRules.Allow | ForEach-Object ToString) | Should -Be @('10.1.0.0/16')
        @($s.EgressRules.Deny | ForEach-Object ToString) | Should -Be @('8.8.8.0/24', '2001:4860::/32')
    }

    It 'warns loudly with -EgressUnprotected' {
        $s = Start-WgServer -ListenPort 0 -EgressUnprotected -WarningVariable w -WarningAction SilentlyContinue
        $s.EgressRules.Unprotected | Should -BeTrue
        "$w" | Should -Match 'loopback, cloud metadata, private networks'
    }

    It 'applies -EgressLimit to the engine''s egress options' {
        $s = Start-WgServer -ListenPort 0 -EgressLimit @{ MaxUdpFlowsPerPeer = 7; udpidletimeout = '00:00:30'; TcpConnectTimeout = 4 }
        $o = (Get-WgEngineServer $s).EgressOptions
        $o.MaxUdpFlowsPerPeer | Should -Be 7
        $o.UdpIdleTimeout | Should -Be ([TimeSpan]::FromSeconds(30))
        $o.TcpConnectTimeout | Should -Be ([TimeSpan]::FromSeconds(4))
        $o.MaxUdpFlows | Should -Be 16384   # untouched
    }

    It 'refuses a bad -EgressLimit with a stable id and starts nothing: <Why>' -ForEach @(
        @{ Why = 'unknown key'; Limit = @{ MaxFlows = 1 }; Id = 'EgressLimitUnknownKey' }
        @{ Why = 'zero'; Limit = @{ MaxUdpFlows = 0 }; Id = 'EgressLimitInvalidValue' }
        @{ Why = 'not a number'; Limit = @{ MaxTcpConnections = 'many' }; Id = 'EgressLimitInvalidValue' }
        @{ Why = 'tiny buffer'; Limit = @{ TcpBufferBytes = 100 }; Id = 'EgressLimitInvalidValue' }
        @{ Why = 'negative timeout'; Limit = @{ UdpIdleTimeout = '-00:00:05' }; Id = 'EgressLimitInvalidValue' }
    ) {
        { Start-WgServer -ListenPort 0 -EgressLimit $Limit } | Should -Throw -ErrorId "$Id*"
        Get-WgServer | Should -BeNullOrEmpty
    }

    It 'refuses -EgressDeny, -EgressUnprotected and -EgressLimit where no userspace egress runs' {
        { Start-WgServer -ListenPort 0 -Egress None -EgressDeny 10.0.0.0/8 } | Should -Throw -ErrorId 'EgressAllowNotApplicable*'
        { Start-WgServer -ListenPort 0 -Egress None -EgressUnprotected } | Should -Throw -ErrorId 'EgressAllowNotApplicable*'
        { Start-WgServer -ListenPort 0 -Egress None -EgressLimit @{ MaxUdpFlows = 5 } } | Should -Throw -ErrorId 'EgressAllowNotApplicable*'
        Get-WgServer | Should -BeNullOrEmpty
    }
}

Describe 'Set-WgServer -EgressAllow / -EgressDeny / -EgressUnprotected' {
    BeforeAll {
        $script:Dir = (New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) "wgegress-$PID-$(Get-Random)")).FullName
    }
    AfterAll { Remove-Item -LiteralPath $Dir -Recurse -Force -ErrorAction Ignore }
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'changes the rules of a running server at once and keeps the parts not given' {
        $s = Start-WgServer -ListenPort 0 -EgressDeny 8.8.8.0/24
        $engine = Get-WgEngineServer $s
        $engine.IsEgressAllowed([System.Net.IPAddress]::Parse('10.1.2.3')) | Should -BeFalse
        Set-WgServer -EgressAllow 10.1.0.0/16
        $engine.IsEgressAllowed([System.Net.IPAddress]::Parse('10.1.2.3')) | Should -BeTrue
        $engine.IsEgressAllowed([System.Net.IPAddress]::Parse('8.8.8.8')) | Should -BeFalse          # -EgressDeny kept
        Set-WgServer -EgressDeny @()
        $engine.IsEgressAllowed([System.Net.IPAddress]::Parse('8.8.8.8')) | Should -BeTrue
        @((Get-WgServer).EgressRules.Allow | ForEach-Object ToString) | Should -Be @('10.1.0.0/16')
        Set-WgServer -EgressUnprotected -WarningAction SilentlyContinue
        $engine.IsEgressAllowed([System.Net.IPAddress]::Parse('127.0.0.1')) | Should -BeTrue
        Set-WgServer -EgressUnprotected:$false
        $engine.IsEgressAllowed([System.Net.IPAddress]::Parse('127.0.0.1')) | Should -BeFalse
    }

    It 'changes nothing with -WhatIf or a malformed CIDR' {
        $s = Start-WgServer -ListenPort 0
        Set-WgServer -EgressAllow 10.0.0.0/8 -WhatIf
        $s.EgressRules.Allow | Should -BeNullOrEmpty
        { Set-WgServer -EgressDeny 10.0.0.0/33 } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
        $s.EgressRules.Deny | Should -BeNullOrEmpty
    }

    It 'persists the rules with -ConfigPath in comment lines and restores them at the next start' {
        $conf = Join-Path $Dir "e$(Get-Random).conf"
        Start-WgServer -ListenPort 0 -ConfigPath $conf | Out-Null
        Set-WgServer -EgressAllow 10.1.0.0/16 -EgressDeny 8.8.8.0/24
        $text = Get-Content -Raw -LiteralPath $conf
        $text | Should -Match '(?m)^#! EgressAllow = 10\.1\.0\.0/16$'
        $text | Should -Match '(?m)^#! EgressDeny = 8\.8\.8\.0/24$'
        Get-WgServer | Stop-WgServer
        $s = Start-WgServer -ListenPort 0 -ConfigPath $conf
        @($s.EgressRules.Allow | ForEach-Object ToString) | Should -Be @('10.1.0.0/16')
        (Get-WgEngineServer $s).IsEgressAllowed([System.Net.IPAddress]::Parse('8.8.8.8')) | Should -BeFalse
    }

    It 'refuses rules on a server without a userspace egress and changes nothing' {
        Start-WgServer -ListenPort 0 -Egress None | Out-Null
        Set-WgServer -EgressAllow 10.0.0.0/8 -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'EgressRulesNotApplicable*'
        (Get-WgServer).EgressRules.Allow | Should -BeNullOrEmpty
    }
}
