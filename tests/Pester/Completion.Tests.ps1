# Tab completion from the live session, through TabExpansion2 as the console calls it.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
    function Complete([string]$Line) { (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches }
}

Describe 'Argument completers' {
    BeforeAll {
        $script:a = Start-WgServer -Name "alpha$PID" -ListenPort 0 -Address 10.45.0.1/24
        $script:b = Start-WgServer -Name "beta$PID" -ListenPort 0 -Address 10.46.0.1/24
        $script:alice = Add-WgPeer -Server $a -PublicKey (New-WgKey).PublicKey -Name alice
        $script:alan = Add-WgPeer -Server $a -PublicKey (New-WgKey).PublicKey -Name alan
        $script:bob = Add-WgPeer -Server $b -PublicKey (New-WgKey).PublicKey -Name bob
    }
    AfterAll { Get-WgServer | Stop-WgServer }

    It 'completes -Server of the peer cmdlets with the session''s server names' {
        (Complete 'Get-WgPeer -Server ').CompletionText | Should -Be @("alpha$PID", "beta$PID")
        (Complete 'New-WgClient -Server be').CompletionText | Should -Be @("beta$PID")
        (Complete 'Add-WgPeer -Server zz').CompletionText | Should -BeNullOrEmpty
    }

    It 'completes -Name of <_> with server names' -ForEach 'Get-WgServer', 'Stop-WgServer', 'Wait-WgServer', 'Set-WgServer', 'Start-WgServer' {
        (Complete "$_ -Name al").CompletionText | Should -Be @("alpha$PID")
    }

    It 'completes Get-WgPeer -Name with peer names of the -Server on the line' {
        (Complete "Get-WgPeer -Server alpha$PID -Name ").CompletionText | Should -Be @('alan', 'alice')
        (Complete "Get-WgPeer -Server beta$PID -Name ").CompletionText | Should -Be @('bob')
        (Complete 'Get-WgPeer -Server $a -Name ').CompletionText | Should -Be @('alan', 'alice')
        (Complete "Get-WgPeer -Server alpha$PID -Name ali").CompletionText | Should -Be @('alice')
        (Complete 'Get-WgPeer -Name ').CompletionText | Should -Be @('alan', 'alice', 'bob')   # every server, sorted
    }

    It 'completes -PublicKey to the key, matching by name prefix, with the name in list item and tooltip' {
        $m = Complete "Remove-WgPeer -Server alpha$PID -PublicKey alic"
        $m.Count | Should -Be 1
        $m[0].CompletionText | Should -Be $alice.PublicKey
        $m[0].ListItemText | Should -Match 'alice'
        $m[0].ToolTip | Should -Match "alice on alpha$PID"
        (Complete "Set-WgPeer -Server alpha$PID -PublicKey al").CompletionText | Should -Be @($alan.PublicKey, $alice.PublicKey)
    }

    It 'completes -PublicKey by key prefix, and only on the -Server given' {
        $prefix = $bob.PublicKey.Substring(0, 6)
        (Complete "Get-WgPeer -PublicKey $prefix").CompletionText | Should -Be @($bob.PublicKey)
        (Complete "Get-WgPeer -Server alpha$PID -PublicKey $prefix").CompletionText | Should -BeNullOrEmpty
    }

    It 'offers no server names in a runspace whose session has no servers' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$((Get-Module WireGuardGateway).Path)'").Invoke()
            $ps.Commands.Clear()
            $line = 'Get-WgPeer -Server '
            $m = $ps.AddScript("(TabExpansion2 -inputScript '$line' -cursorColumn $($line.Length)).CompletionMatches").Invoke()
            @($m | Where-Object ResultType -eq 'ParameterValue').Count | Should -Be 0
            # Its own server shows up there, and ours do not.
            $ps.Commands.Clear()
            $m = $ps.AddScript("`$null = Start-WgServer -Name iso$PID -ListenPort 0; (TabExpansion2 -inputScript '$line' -cursorColumn $($line.Length)).CompletionMatches").Invoke()
            @($m | Where-Object ResultType -eq 'ParameterValue').CompletionText | Should -Be @("iso$PID")
        } finally { $ps.Dispose() }
        (Complete 'Get-WgPeer -Server ').Count | Should -Be 2   # this runspace still sees its own two
    }
}
