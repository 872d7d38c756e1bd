# The cmdlet side of the UAPI: where the socket goes, what it answers, and -Backend Uapi errors.
# (wg and wireguard-go end-to-end: tests/Interop/Uapi*.Tests.ps1.)

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:Manifest = Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1'
    Import-Module $Manifest -Force
    $script:Dir = (New-Item -ItemType Directory -Path (Join-Path ([System.IO.Path]::GetTempPath()) "wguapi-$PID-$(Get-Random)")).FullName

}

AfterAll { Remove-Item -LiteralPath $Dir -Recurse -Force -ErrorAction Ignore }

Describe 'Start-WgServer -UapiPath' {
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'serves the UAPI on the given path and reports it in UapiPath' {
        $path = Join-Path $Dir 'given.sock'
        $s = Start-WgServer -Name "ug$PID" -ListenPort 0 -UapiPath $path
        $s.UapiPath | Should -Be $path
        $text = Get-UapiText $path
        $text | Should -Match "listen_port=$($s.ListenPort)\n"
        $text | Should -Match "errno=0\n\n$"
    }

    It 'serves a default socket named after the server when -UapiPath is left out' {
        $s = Start-WgServer -Name "ud$PID" -ListenPort 0
        $s.UapiPath | Should -Not -BeNullOrEmpty
        Split-Path -Leaf $s.UapiPath | Should -Be "ud$PID.sock"
        Get-UapiText $s.UapiPath | Should -Match "errno=0\n\n$"
    }

    It 'shows peers added by Add-WgPeer in the UAPI get, keys in hex' {
        $path = Join-Path $Dir 'peers.sock'
        $null = Start-WgServer -Name "up$PID" -ListenPort 0 -UapiPath $path -Address 10.61.0.1/24
        $k = New-WgKey
        $null = Add-WgPeer -Server "up$PID" -PublicKey $k.PublicKey -AllowedIPs 10.61.0.9/32
        $hex = ([Convert]::FromBase64String($k.PublicKey) | ForEach-Object { $_.ToString('x2') }) -join ''
        $text = Get-UapiText $path
        $text | Should -Match "public_key=$hex\n"
        $text | Should -Match "allowed_ip=10.61.0.9/32\n"
    }

    It 'removes the socket on Stop-WgServer' {
        $path = Join-Path $Dir 'stop.sock'
        $s = Start-WgServer -Name "us$PID" -ListenPort 0 -UapiPath $path
        Test-Path -LiteralPath $path | Should -BeTrue
        $s | Stop-WgServer
        Test-Path -LiteralPath $path | Should -BeFalse
    }

    It 'refuses a path another live server holds, and frees nothing of the first' {
        $path = Join-Path $Dir 'twice.sock'
        $a = Start-WgServer -Name "ua$PID" -ListenPort 0 -UapiPath $path
        Start-WgServer -Name "ub$PID" -ListenPort 0 -UapiPath $path -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'UapiSocketInUse*'
        @(Get-WgServer).Name | Should -Be @("ua$PID")
        Get-UapiText $path | Should -Match "listen_port=$($a.ListenPort)\n"
    }
}

Describe 'Start-WgServer -Backend Uapi' {
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'fails with UapiDeviceUnavailable when nothing listens on -UapiPath' {
        Start-WgServer -Name "ux$PID" -Backend Uapi -UapiPath (Join-Path $Dir 'nobody.sock') -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'UapiDeviceUnavailable*'
        "$($ev[0])" | Should -BeLike '*nobody.sock*'
    }

    It 'manages another in-process server through its socket (our UAPI client against our UAPI server)' {
        $path = Join-Path $Dir 'inner.sock'
        $inner = Start-WgServer -Name "ui$PID" -ListenPort 0 -UapiPath $path -Address 10.62.0.1/24
        $outer = Start-WgServer -Name "uo$PID" -Backend Uapi -UapiPath $path -Address 10.62.0.1/24
        $outer.Backend | Should -Be 'Uapi'
        $outer.PublicKey | Should -Be $inner.PublicKey
        $outer.ListenPort | Should -Be $inner.ListenPort
        $k = New-WgKey
        $null = Add-WgPeer -Server $outer.Name -PublicKey $k.PublicKey -Name via-uapi
        # The outer allocated the address; the inner server (the device) holds the peer in its own table.
        (Get-WgPeer -Server $inner.Name).PublicKey | Should -Be $k.PublicKey
        @((Get-WgPeer -Server $inner.Name).AllowedIPs) | Should -Be @((Get-WgPeer -Server $outer.Name -Name via-uapi).AllowedIPs)
        Remove-WgPeer -Server $outer.Name -PublicKey $k.PublicKey -Confirm:$false
        Get-WgPeer -Server $inner.Name | Should -BeNullOrEmpty
        Stop-WgServer $outer.Name
        (Get-WgServer $inner.Name).State | Should -Be 'Running'
    }
}
