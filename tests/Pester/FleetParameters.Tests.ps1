# Start-WgServer's fleet parameters without a registry: the single-node path takes -PrivateKeyPath, and a fleet
# parameter alone is a clear error before anything starts (the fleet itself: tests/Interop/Fleet.Tests.ps1).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
    $script:dir = Join-Path ([IO.Path]::GetTempPath()) "wgfleetparams-$PID-$(Get-Random)"
    New-Item -ItemType Directory $dir | Out-Null
}
AfterAll { Remove-Item -Recurse -Force $dir -ErrorAction Ignore }

Describe 'Start-WgServer -PrivateKeyPath and the fleet parameters' {
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'starts a single gateway with the key of a file' {
        $k = New-WgKey
        $file = Join-Path $dir 'wg.key'
        Set-Content -Path $file -Value $k.PrivateKey
        $s = Start-WgServer -Name fpk -ListenPort 0 -PrivateKeyPath $file
        $s.PublicKey | Should -Be $k.PublicKey
        $s.Backend | Should -Be 'Userspace'
    }

    It 'refuses a file without a key, and both -PrivateKey and -PrivateKeyPath, starting nothing' {
        $bad = Join-Path $dir 'bad.key'
        Set-Content -Path $bad -Value 'not a key'
        { Start-WgServer -Name fpk -ListenPort 0 -PrivateKeyPath $bad } | Should -Throw -ErrorId 'InvalidPrivateKeyFile*'
        $good = Join-Path $dir 'good.key'
        Set-Content -Path $good -Value (New-WgKey).PrivateKey
        { Start-WgServer -Name fpk -ListenPort 0 -PrivateKeyPath $good -PrivateKey (New-WgKey).PrivateKey } | Should -Throw -ErrorId 'PrivateKeyConflict*'
        Get-WgServer | Should -BeNullOrEmpty
    }

    It 'refuses a fleet parameter without the others (FleetParameterMissing)' {
        { Start-WgServer -Name fpk -ListenPort 0 -Fleet vpn } | Should -Throw -ErrorId 'FleetParameterMissing*'
        { Start-WgServer -Name fpk -ListenPort 0 -InstanceId a1 } | Should -Throw -ErrorId 'FleetParameterMissing*'
        Get-WgServer | Should -BeNullOrEmpty
    }

    It 'refuses an unreachable registry with RegistryUnavailable, without printing the connection string' {
        $secret = Join-Path $dir 'fleet.secret'
        Set-Content -Path $secret -Value 'a fleet secret long enough'
        # Port 1 on loopback: nothing listens (connection refused at once).
        $cs = 'Host=127.0.0.1;Port=1;Username=wg;Password=hunter2secret;Timeout=2'
        $err = $null
        try { Start-WgServer -Name fpk -Registry $cs -Fleet vpn -FleetSecretPath $secret -PrivateKey (New-WgKey).PrivateKey } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -BeLike 'RegistryUnavailable*'
        "$err $($err.TargetObject)" | Should -Not -Match 'hunter2secret'
        Get-WgServer | Should -BeNullOrEmpty
    }
}
