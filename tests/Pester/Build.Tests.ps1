# build.ps1 itself: what `Test -Suite` accepts. (The suites it runs are the rest of this run.)

BeforeAll {
    $script:root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $exe = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
    [string[]] $script:pwsh = if (Test-Path $exe) { @($exe) } else { @('dotnet', (Join-Path $PSHOME 'pwsh.dll')) }
    function Invoke-BuildScript([string[]] $Arguments) {
        $out = & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $root 'build.ps1') @Arguments 2>&1
        # pwsh wraps a long error message over lines that start with '|': join them again.
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Text = (($out | Out-String) -replace '\r?\n\s*\|\s*', ' ') }
    }
}

Describe 'build.ps1 Test -Suite' {
    It 'refuses an unknown suite before building or running anything, naming the ones it knows' {
        $r = Invoke-BuildScript @('Test', '-Suite', 'xunit,bogus')
        $r.ExitCode | Should -Not -Be 0
        $r.Text | Should -Match 'expected one or more of xunit, pester, host, interop, fuzz, kernel'
        $r.Text | Should -Not -Match '== Build'
        $r.Text | Should -Not -Match '== Test: xunit'
    }

    It 'takes suites after -Suite as separate arguments too, and refuses an unknown one among them' {
        $r = Invoke-BuildScript @('Test', '-Suite', 'fuzz', 'nosuch')
        $r.ExitCode | Should -Not -Be 0
        $r.Text | Should -Match "got 'fuzz,nosuch'"
    }
}
