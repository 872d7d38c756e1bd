BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
}

Describe 'Start-WgServer -Egress / -EgressAllow' {
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
}
