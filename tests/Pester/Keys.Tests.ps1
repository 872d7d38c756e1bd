BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
}

Describe 'New-WgKey' {
    It 'outputs a WgKeyPair of two 44-character base64 keys of 32 bytes' {
        $k = New-WgKey
        $k.GetType().Name | Should -Be 'WgKeyPair'
        $k.PrivateKey.Length | Should -Be 44
        $k.PublicKey.Length | Should -Be 44
        [Convert]::FromBase64String($k.PrivateKey).Length | Should -Be 32
        [Convert]::FromBase64String($k.PublicKey).Length | Should -Be 32
        $k.PrivateKey | Should -Not -Be $k.PublicKey
    }

    It 'makes a clamped private key, as wg genkey does' {
        $b = [Convert]::FromBase64String((New-WgKey).PrivateKey)
        ($b[0] -band 7) | Should -Be 0
        ($b[31] -band 128) | Should -Be 0
        ($b[31] -band 64) | Should -Be 64
    }

    It 'makes different keys each time' {
        (1..5 | ForEach-Object { (New-WgKey).PublicKey } | Select-Object -Unique).Count | Should -Be 5
    }
}

Describe 'Get-WgPublicKey' {
    It 'derives the public key of New-WgKey (by value and by property name)' {
        $k = New-WgKey
        Get-WgPublicKey -PrivateKey $k.PrivateKey | Should -Be $k.PublicKey
        $k.PrivateKey | Get-WgPublicKey | Should -Be $k.PublicKey
        $k | Get-WgPublicKey | Should -Be $k.PublicKey
    }

    It 'matches the RFC 7748 section 6.1 test vector (Alice)' {
        # RFC 7748 6.1: Alice's private key 77076d0a...2a and public key 8520f009...6a (hex).
        $priv = [Convert]::ToBase64String([Convert]::FromHexString('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))
        $pub = [Convert]::ToBase64String([Convert]::FromHexString('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'))
        Get-WgPublicKey $priv | Should -Be $pub
    }

    It 'refuses a malformed key at parameter binding, naming the parameter and not echoing the input' {
        $err = { Get-WgPublicKey -PrivateKey 'c2VjcmV0LW5vdC1hLWtleQ==' } | Should -Throw -ErrorId 'ParameterArgumentValidationError*' -PassThru
        $err.Exception | Should -BeOfType ([System.Management.Automation.ParameterBindingException])
        $err.Exception.Message | Should -Match "parameter 'PrivateKey'"
        $err.Exception.Message | Should -Not -Match 'c2VjcmV0'
    }

    It 'keeps a piped bad private key out of the error record (TargetObject, CategoryInfo, Get-Error)' {
        $secret = 'c2VjcmV0LW5vdC1hLWtleQ=='
        $good = New-WgKey
        $out = $secret, $good.PrivateKey | Get-WgPublicKey -ErrorVariable ev -ErrorAction SilentlyContinue
        $out | Should -Be @($good.PublicKey)
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentValidationError,*'
        $ev[0].Exception.Message | Should -Match "parameter 'PrivateKey'"
        $ev[0].TargetObject | Should -BeNullOrEmpty
        "$($ev[0].CategoryInfo)" | Should -Not -Match 'c2VjcmV0'
        ($ev[0] | Get-Error | Out-String) | Should -Not -Match 'c2VjcmV0'
    }
}

Describe 'New-WgPresharedKey' {
    It 'outputs 32 random bytes as base64' {
        $a = New-WgPresharedKey
        $a | Should -BeOfType ([string])
        [Convert]::FromBase64String($a).Length | Should -Be 32
        New-WgPresharedKey | Should -Not -Be $a
    }
}
