BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:Manifest = Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1'

    function Test-UdpPortFree([int] $Port) {
        $s = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetworkV6, 'Dgram', 'Udp')
        try { $s.DualMode = $true; $s.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::IPv6Any, $Port)); return $true }
        catch [System.Net.Sockets.SocketException] { return $false }
        finally { $s.Dispose() }
    }

}

Describe 'Per-runspace sessions' {
    BeforeEach { Import-Module $Manifest -Force }
    AfterEach { if (Get-Module WireGuardGateway) { Get-WgServer | Stop-WgServer } }

    It 'keeps two runspaces apart, and closing a runspace stops its servers' {
        $mine = Start-WgServer -Name mine -ListenPort 0
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$Manifest'; `$s = Start-WgServer -Name theirs -ListenPort 0; [pscustomobject]@{ Port = `$s.ListenPort; Names = @(Get-WgServer | ForEach-Object Name) }")
            $r = $ps.Invoke()
            $ps.Streams.Error.Count | Should -Be 0
            $r[0].Names | Should -Be @('theirs')
            $theirPort = $r[0].Port
            (Get-WgServer).Name | Should -Be @('mine')
            Test-UdpPortFree $theirPort | Should -BeFalse
        }
        finally { $ps.Dispose() }   # closes its runspace
        Wait-Until { Test-UdpPortFree $theirPort } | Should -BeTrue
        (Get-WgServer).Name | Should -Be @('mine')
        (Get-WgServer -Name mine).State | Should -Be 'Running'
        Test-UdpPortFree $mine.ListenPort | Should -BeFalse
    }

    It 'lets two runspaces use the same server name' {
        $null = Start-WgServer -Name wg0 -ListenPort 0
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$Manifest'; (Start-WgServer -Name wg0 -ListenPort 0).State")
            $ps.Invoke() | Should -Be 'Running'
            $ps.Streams.Error.Count | Should -Be 0
        }
        finally { $ps.Dispose() }
    }

    It 'Remove-Module stops the servers and frees their ports' {
        $a = Start-WgServer -Name a -ListenPort 0
        $b = Start-WgServer -Name b -ListenPort 0
        Test-UdpPortFree $a.ListenPort | Should -BeFalse
        Remove-Module WireGuardGateway
        $a.State | Should -Be 'Stopped'
        foreach ($port in $a.ListenPort, $b.ListenPort) {
            $udp = [System.Net.Sockets.UdpClient]::new([System.Net.Sockets.AddressFamily]::InterNetworkV6)
            try {
                $udp.Client.DualMode = $true
                { $udp.Client.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::IPv6Any, $port)) } | Should -Not -Throw
            }
            finally { $udp.Dispose() }
        }
        # Importing again gives an empty session.
        Import-Module $Manifest -Force
        Get-WgServer | Should -BeNullOrEmpty
    }
}
