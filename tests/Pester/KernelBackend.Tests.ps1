# -Backend Kernel on this host. The host's kernel has no wireguard module, so what is checked here is
# the refusal path (the real module is driven in the qemu guest: tests/Kernel, suite 'kernel').
BeforeAll {
    $script:Manifest = Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1'
    Import-Module $Manifest -Force
    $script:NoModule = -not $IsLinux -or (Test-Path /sys/module/wireguard)
}

Describe 'Start-WgServer -Backend Kernel' {
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'names what is missing when the kernel has no WireGuard module' -Skip:$script:NoModule {
        $name = "wgkp$PID" -replace '^(.{15}).*', '$1'
        Start-WgServer -Name $name -Backend Kernel -ListenPort 0 -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'KernelModuleMissing*'
        $err[0].Exception.Message | Should -Match 'modprobe wireguard'
        Get-WgServer -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Test-Path "/sys/class/net/$name" | Should -BeFalse
    }

    It 'refuses the settings of the in-process engine before touching the kernel' -ForEach @(
        @{ Extra = @{ Egress = 'Userspace' }; Id = 'EgressNotApplicable' }
        @{ Extra = @{ BindAddress = '127.0.0.1' }; Id = 'SettingNotApplicable' }
        @{ Extra = @{ UapiPath = '/tmp/never.sock' }; Id = 'UapiNotServed' }
        @{ Extra = @{ EgressAllow = '192.0.2.0/24' }; Id = 'EgressNotApplicable' }
    ) {
        { Start-WgServer -Name 'wgkref' -Backend Kernel -ListenPort 0 @Extra -ErrorAction Stop } |
            Should -Throw -ErrorId "$Id*"
        Get-WgServer -Name 'wgkref' -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'refuses client isolation, which only the in-process engine enforces' {
        { Start-WgServer -Name 'wgkiso' -Backend Kernel -ListenPort 0 -PeerIsolation -ErrorAction Stop } |
            Should -Throw -ErrorId 'PolicyNotApplicable*'
        Get-WgServer -Name 'wgkiso' -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}
