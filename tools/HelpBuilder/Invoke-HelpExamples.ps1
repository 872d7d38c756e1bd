#!/usr/bin/env pwsh
<#
.SYNOPSIS
  Runs the examples of the built help (module/en-US), each in a fresh runspace, and reports which
  ran without errors: a manual check that the examples are real, beyond Help.Tests.ps1's parse check.
.DESCRIPTION
  Each example runs after a fixture: unless the example starts its own server, a server wg0 on a free
  port with peers named as the examples expect (alice-laptop, old-laptop, temp-1, branch-office, ...).
  Examples that block (Wait-WgServer without -Timeout), use system paths (/etc/wireguard), or call
  cmdlets this build lacks are skipped. Expected failures remain for examples that read a file the
  reader would have (old-wg0.conf, client.conf), name servers that do not exist here ('old'/'new'),
  or prompt (-Confirm); read the messages.
.EXAMPLE
  ./build.ps1 Build; pwsh -NoProfile -File tools/HelpBuilder/Invoke-HelpExamples.ps1 -Name *-WgPeer
#>
param([string] $Name = '*')

$ErrorActionPreference = 'Stop'
$manifest = Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1'
Import-Module $manifest -Force
$cmdlets = @((Get-Module WireGuardGateway).ExportedCmdlets.Keys)
$fixture = @'
Start-WgServer -Name wg0 -ListenPort 0 | Out-Null
'alice-laptop', 'old-laptop', 'temp-1', 'temp-2', 'branch-office', 'bob-laptop', 'contractor-bob', 'kiosk' |
    ForEach-Object { Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name $_ } | Out-Null
'@
$failed = 0
foreach ($cmd in $cmdlets | Where-Object { $_ -like $Name } | Sort-Object) {
    $i = 0
    foreach ($e in @((Get-Help $cmd).examples.example)) {
        $i++
        $used = [regex]::Matches($e.code, '\b[A-Z][a-z]+-Wg\w+') | ForEach-Object Value | Sort-Object -Unique
        $missing = @($used | Where-Object { $_ -notin $cmdlets })
        if ($missing) { "SKIP $cmd #${i}: needs $($missing -join ', ')"; continue }
        if ($e.code -match '/etc/wireguard' -or ($e.code -match 'Wait-WgServer' -and $e.code -notmatch '-Timeout')) { "SKIP $cmd #${i}: blocks or uses system paths"; continue }
        $setup = if ($e.code -match '^\s*(\$\w+\s*=\s*)?Start-WgServer') { '' } else { $fixture }
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$manifest'`n$setup`n$($e.code)`nGet-WgServer | Stop-WgServer")
            $out = $ps.Invoke()
            $errs = @($ps.Streams.Error)
        }
        catch { $errs = @($_) }
        finally { $ps.Dispose() }
        if ($errs) { $failed++; "FAIL $cmd #${i}: $($errs[0].ToString())" } else { "ok   $cmd #${i}: $(@($out).Count) objects" }
    }
}
"$failed examples failed"
