# Set-WgServer: key rotation and port moves on a running gateway.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
    $script:Dir = (New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) "wgset-$PID-$(Get-Random)")).FullName

}

AfterAll { Remove-Item -LiteralPath $Dir -Recurse -Force -ErrorAction Ignore }

Describe 'Set-WgServer' {
    BeforeEach {
        $script:srv = Start-WgServer -Name "set$PID" -ListenPort 0 -Address 10.43.0.1/24 -UapiPath (Join-Path $Dir "s$(Get-Random).sock")
        $script:peers = 1..3 | ForEach-Object { Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name "p$_" }
    }
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'rotates the private key in place: new public key, same peers, the engine uses the new key' {
        $old = $srv.PublicKey
        $k = New-WgKey
        $out = Set-WgServer -PrivateKey $k.PrivateKey -PassThru
        $out.PublicKey | Should -Be $k.PublicKey
        $out.PublicKey | Should -Not -Be $old
        (Get-WgServer).PublicKey | Should -Be $k.PublicKey
        (Get-WgPeer | Sort-Object Name).PublicKey | Should -Be ($peers | Sort-Object Name).PublicKey
        (Get-WgPeer -Name p2).AllowedIPs | Should -Be $peers[1].AllowedIPs
        Get-UapiText $srv.UapiPath | Should -Match ("private_key=" + (ConvertTo-Hex $k.PrivateKey) + "\n")
    }

    It 'moves the listen port, keeping peers, and frees the old one' {
        $oldPort = $srv.ListenPort
        $out = Get-WgServer | Set-WgServer -ListenPort 0 -PassThru
        $out.ListenPort | Should -Not -Be 0
        (Get-WgPeer).Count | Should -Be 3
        $out.ListenPort | Should -Not -Be $oldPort   # the new socket is bound while the old one is still open
        # The old port is free again: another server can take it.
        (Start-WgServer -Name "old$PID" -ListenPort $oldPort).ListenPort | Should -Be $oldPort
        Get-UapiText $srv.UapiPath | Should -Match "listen_port=$($out.ListenPort)\n"
    }

    It 'fails cleanly on a taken port and changes nothing, not even a key given with it' {
        $other = Start-WgServer -Name "other$PID" -ListenPort 0
        $before = Get-WgServer -Name $srv.Name
        $port = $before.ListenPort; $pub = $before.PublicKey
        Set-WgServer -Name $srv.Name -ListenPort $other.ListenPort -PrivateKey (New-WgKey).PrivateKey -ErrorVariable ev -ErrorAction SilentlyContinue |
            Should -BeNullOrEmpty
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'ListenPortInUse,*'
        $ev[0].CategoryInfo.Category | Should -Be 'ResourceUnavailable'
        $after = Get-WgServer -Name $srv.Name
        $after.ListenPort | Should -Be $port
        $after.PublicKey | Should -Be $pub
        $after.State | Should -Be 'Running'
        (Get-WgPeer -Server $srv.Name).Count | Should -Be 3
    }

    It 'changes nothing with -WhatIf' {
        $pub = $srv.PublicKey; $port = $srv.ListenPort
        Set-WgServer -PrivateKey (New-WgKey).PrivateKey -ListenPort 0 -WhatIf
        $srv.PublicKey | Should -Be $pub
        $srv.ListenPort | Should -Be $port
    }

    It "refuses a key that is one of its peers' keys" {
        $k = New-WgKey
        $null = Add-WgPeer -PublicKey $k.PublicKey -Name twin
        Set-WgServer -PrivateKey $k.PrivateKey -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'PrivateKeyIsPeer,*'
        (Get-WgServer).PublicKey | Should -Not -Be $k.PublicKey
    }

    It 'refuses a malformed key at binding without echoing it' {
        $bad = 'not-a-key-' + (Get-Random)
        { Set-WgServer -PrivateKey $bad } | Should -Throw -ExceptionType ([System.Management.Automation.ParameterBindingException])
        try { Set-WgServer -PrivateKey $bad } catch { "$_" | Should -Not -Match $bad }
    }

    It 'never shows the new private key in verbose output or the returned object' {
        $k = New-WgKey
        $out = Set-WgServer -PrivateKey $k.PrivateKey -PassThru -Verbose 4>&1
        ($out | Out-String) + ($out | Format-List * | Out-String) | Should -Not -Match ([regex]::Escape($k.PrivateKey))
    }
}
