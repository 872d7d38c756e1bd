#!/usr/bin/env pwsh
<#
.SYNOPSIS
  The one entry point: Build (publish the module into module/bin and the gateway host into host/bin),
  Test (xunit + Pester + host + interop + fuzzing + kernel), Demo (a gateway with one client), Host (run the
  gateway host), Bench, Package (the module as a .nupkg for Install-PSResource, into artifacts/package),
  Clean. Works from any current directory.
.EXAMPLE
  ./build.ps1 Test
.EXAMPLE
  ./build.ps1 Test -Suite xunit,pester     # only these suites; the closing line counts only them
.EXAMPLE
  ./build.ps1 Host /etc/wireguard/wg0.conf
#>
param(
    [Parameter(Position = 0)]
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Host', 'Package', 'Clean')]
    [string] $Task = 'Build',
    # Test only: the suites to run, any of xunit, pester, host, interop, fuzz, kernel (a comma list; default all of them)
    [string[]] $Suite = @('xunit', 'pester', 'host', 'interop', 'fuzz', 'kernel'),
    # Bench: passed on to bench/run-bench.ps1 (e.g. -Only hub-latency,scale -Rounds 5). Host: WgHost's arguments.
    [Parameter(ValueFromRemainingArguments)]
    [object[]] $BenchArguments = @()
)

$ErrorActionPreference = 'Stop'
$env:NO_COLOR = '1'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$PSStyle.OutputRendering = 'PlainText'

$Root = $PSScriptRoot
$ModuleBin = Join-Path $Root 'module/bin'
$HostBin = Join-Path $Root 'host/bin'
$Manifest = Join-Path $Root 'module/WireGuardGateway.psd1'
$Artifacts = Join-Path $Root 'artifacts'
$PesterVersion = '5.7.1'
$PesterPsd1 = Join-Path $HOME ".nuget/packages/pester/$PesterVersion/tools/Pester.psd1"
# The pwsh running this script (the pinned 7.6.9 when started via `dotnet pwsh`, whose process is
# `dotnet`): run child pwsh processes from $PSHOME, through the apphost when present.
$PwshExe = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
[string[]] $Pwsh = if (Test-Path $PwshExe) { @($PwshExe) } else { @('dotnet', (Join-Path $PSHOME 'pwsh.dll')) }

function Invoke-Native([string] $What, [scriptblock] $Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)." }
}

function Invoke-Build {
    Write-Host "== Build: publishing the module into module/bin"
    Invoke-Native 'dotnet publish' { dotnet publish (Join-Path $Root 'src/WgPowerShell') -c Release -o $ModuleBin -v q --nologo | Out-Host }
    Write-Host "== Build: publishing the gateway host into host/bin"
    Invoke-Native 'dotnet publish' { dotnet publish (Join-Path $Root 'src/WgHost') -c Release -o $HostBin -v q --nologo | Out-Host }
    # Help (docs/cmdlets/*.md, docs/about_*.md) into module/en-US, in a child pwsh since it imports the module.
    Write-Host "== Build: help into module/en-US"
    Invoke-Native 'help build' { & $Pwsh[0] @($Pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $Root 'tools/HelpBuilder/Build-Help.ps1') -Root $Root | Out-Host }
}

# Runs the xunit tests; returns @{ Passed; Failed } from the TRX file (a build failure counts as one failure).
function Invoke-XunitTests {
    Write-Host "== Test: xunit (tests/WgEngine.Tests)"
    $results = Join-Path $Artifacts 'xunit'
    if (Test-Path $results) { Remove-Item $results -Recurse -Force }
    dotnet test (Join-Path $Root 'tests/WgEngine.Tests') -c Release -v q --nologo `
        --logger 'trx;LogFileName=xunit.trx' --logger 'console;verbosity=minimal' --results-directory $results | Out-Host
    $trx = Get-ChildItem $results -Filter *.trx -Recurse -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $trx) {
        Write-Host "xunit: no results file (the test project did not build or run): counted as 1 failure"
        return @{ Passed = 0; Failed = 1 }
    }
    $counters = ([xml](Get-Content -Raw $trx.FullName)).TestRun.ResultSummary.Counters
    $failed = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
    # A crashed test host leaves a TRX with fewer results than tests and a non-zero exit code.
    if ($LASTEXITCODE -ne 0 -and $failed -eq 0) { $failed = 1 }
    Write-Host "xunit: $($counters.passed) passed, $failed failed, $([int]$counters.notExecuted) skipped"
    $ns = @{ t = 'http://microsoft.com/schemas/VisualStudio/TeamTest/2010' }
    [string[]] $names = Select-Xml -Path $trx.FullName -Namespace $ns -XPath "//t:UnitTestResult[@outcome!='Passed' and @outcome!='NotExecuted']" |
        ForEach-Object { "xunit: $($_.Node.testName): $(([string]$_.Node.Output.ErrorInfo.Message).Trim())" }
    return @{ Passed = [int]$counters.passed; Failed = $failed; Failures = $names }
}

function Restore-Pester {
    if (Test-Path $PesterPsd1) { return }
    Write-Host "== Restoring Pester $PesterVersion from NuGet (tools/TestDeps)"
    Invoke-Native 'dotnet restore tools/TestDeps' { dotnet restore (Join-Path $Root 'tools/TestDeps') -v q | Out-Host }
}

# Runs one Pester suite in a fresh pwsh (the module loads cleanly; the build process stays untouched).
function Invoke-PesterSuite([string] $Folder, [string] $Label, [hashtable] $Environment = @{}) {
    Write-Host "== Test: Pester ($Label)"
    $summary = Join-Path $Artifacts "pester-$Label.json"
    if (Test-Path $summary) { Remove-Item $summary -Force }
    $script = @'
param($PesterPsd1, $Folder, $Summary, $Junit)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPsd1
$c = New-PesterConfiguration
$c.Run.Path = $Folder
$c.Run.PassThru = $true
$c.Output.Verbosity = 'Detailed'
$c.TestResult.Enabled = $true
$c.TestResult.OutputFormat = 'JUnitXml'
$c.TestResult.OutputPath = $Junit
$r = Invoke-Pester -Configuration $c
$failed = $r.FailedCount + $r.FailedBlocksCount + $r.FailedContainersCount
# Names and first error lines of what failed, so the end of the log says it (CI shows only the tail).
function Get-Why($records) {
    $e = @($records)[0]
    if (-not $e) { return '(no error record: a failed block above it)' }
    $at = @(([string]$e.ScriptStackTrace) -split "`n" | Where-Object { $_ -notmatch 'Pester\.psm1' })[0]
    "$($e.Exception.Message) [$at]"
}
$names = @($r.Failed | ForEach-Object { "$($_.ExpandedPath): $(Get-Why $_.ErrorRecord)" }) +
    @($r.FailedBlocks | ForEach-Object { "block $($_.Path -join '.'): $(Get-Why $_.ErrorRecord)" }) +
    @($r.FailedContainers | ForEach-Object { "container $($_.Item): $(Get-Why $_.ErrorRecord)" })
@{ Passed = $r.PassedCount; Failed = $failed; Failures = $names } | ConvertTo-Json | Set-Content -Path $Summary
'@
    $scriptFile = Join-Path $Artifacts "run-pester-$Label.ps1"
    Set-Content -Path $scriptFile -Value $script
    $saved = @{}
    foreach ($k in $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $Environment[$k]) }
    try {
        & $Pwsh[0] @($Pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File $scriptFile $PesterPsd1 $Folder $summary (Join-Path $Artifacts "pester-$Label.junit.xml") | Out-Host
    }
    finally {
        foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
    }
    if (-not (Test-Path $summary)) {
        Write-Host "Pester ($Label): the run did not complete: counted as 1 failure"
        return @{ Passed = 0; Failed = 1 }
    }
    $s = Get-Content -Raw $summary | ConvertFrom-Json
    return @{ Passed = [int]$s.Passed; Failed = [int]$s.Failed; Failures = @($s.Failures | ForEach-Object { "Pester ($Label): $_" }) }
}

# A bounded AFL++ run over the SharpFuzz harness (fuzz/run-fuzz.sh): one check, failed on any crash.
# Exit 77 from the script means afl-fuzz is missing outside CI (a skip); under CI=true it fails instead.
function Invoke-FuzzCheck {
    Write-Host "== Test: fuzzing (fuzz/run-fuzz.sh: AFL++ over the SharpFuzz harness)"
    if ($IsWindows) {
        Write-Host "fuzz: AFL++ runs on Linux only: skipped"
        return @{ Passed = 0; Failed = 0 }
    }
    bash (Join-Path $Root 'fuzz/run-fuzz.sh') | Out-Host
    switch ($LASTEXITCODE) {
        0 { return @{ Passed = 1; Failed = 0 } }
        77 { return @{ Passed = 0; Failed = 0 } }
        default { Write-Host "fuzz: failed (exit code $LASTEXITCODE)"; return @{ Passed = 0; Failed = 1 } }
    }
}

# The kernel backend against the real Linux WireGuard module: tests/Kernel/run-guest.sh boots a cached
# Debian kernel in qemu and runs tests/Kernel/KernelGuest inside; its "N passed, N failed" line counts here.
# Exit 77 = a tool is missing outside CI (a skip); under CI=true the script fails instead.
function Invoke-KernelSuite {
    Write-Host "== Test: kernel (the wireguard module in a qemu guest: tests/Kernel)"
    if (-not $IsLinux) {
        Write-Host "kernel: Linux only: skipped"
        return @{ Passed = 0; Failed = 0 }
    }
    $runner = Join-Path $Artifacts 'kernel-guest'
    dotnet build (Join-Path $Root 'tests/Kernel/KernelGuest') -c Release -o $runner -v q --nologo | Out-Host
    if ($LASTEXITCODE -ne 0) { Write-Host "kernel: the guest runner did not build: counted as 1 failure"; return @{ Passed = 0; Failed = 1; Failures = @('kernel: the guest runner did not build') } }
    $results = Join-Path ([IO.Path]::GetTempPath()) "wgk-results-$([guid]::NewGuid().ToString('N').Substring(0, 12))"
    try {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        bash (Join-Path $Root 'tests/Kernel/run-guest.sh') (Join-Path $runner 'KernelGuest.dll') $results (Join-Path $PSHOME 'pwsh.dll') $Manifest | Out-Host
        $rc = $LASTEXITCODE
        Write-Host "kernel: suite took $([int]$sw.Elapsed.TotalSeconds) s"
        if ($rc -eq 77) { Write-Host "kernel: skipped (a tool is missing; CI=true makes this a failure)"; return @{ Passed = 0; Failed = 0 } }
        $file = Join-Path $results 'results.txt'
        if ($rc -ne 0 -or -not (Test-Path $file)) {
            return @{ Passed = 0; Failed = 1; Failures = @("kernel: the guest did not complete (exit code $rc)") }
        }
        $passed = 0; $failed = 0; $lines = @()
        # The in-process runner's results and the cmdlets' (tests/Kernel/Cmdlets.Guest.ps1); each must end in its summary.
        foreach ($f in @($file, (Join-Path $results 'results-cmdlets.txt'))) {
            $part = @(if (Test-Path $f) { Get-Content $f })
            $summary = $part | Where-Object { $_ -match '^(\d+) passed, (\d+) failed$' } | Select-Object -Last 1
            if (-not $summary) { $failed++; $lines += "FAIL $(Split-Path -Leaf $f): the guest stopped before its summary"; continue }
            $null = $summary -match '^(\d+) passed, (\d+) failed$'
            $passed += [int]$Matches[1]; $failed += [int]$Matches[2]
            $lines += $part
        }
        $lines | Where-Object { $_ -like 'FIGURE *' } | ForEach-Object { Write-Host "kernel: $_" }
        Write-Host "kernel: $passed passed, $failed failed"
        return @{ Passed = $passed; Failed = $failed; Failures = @($lines | Where-Object { $_ -like 'FAIL *' } | ForEach-Object { "kernel: $_" }) }
    }
    finally {
        if (Test-Path $results) { Remove-Item $results -Recurse -Force }
    }
}

# The -Suite names, split where `-File` passed "a,b" as one string; an unknown name is an error.
function Get-TestSuite {
    $known = 'xunit', 'pester', 'host', 'interop', 'fuzz', 'kernel'
    # "-Suite xunit pester" leaves "pester" among the remaining arguments: take those as suites too.
    [string[]] $names = @(@($Suite) + @($BenchArguments) | ForEach-Object { "$_" -split ',' } | ForEach-Object { $_.Trim().ToLowerInvariant() } | Where-Object { $_ })
    $unknown = @($names | Where-Object { $_ -notin $known })
    if ($unknown -or -not $names) { throw "Test -Suite: expected one or more of $($known -join ', '), got '$((@($Suite) + @($BenchArguments)) -join ',')'" }
    @($known | Where-Object { $_ -in $names })
}

function Invoke-Test {
    $suites = Get-TestSuite
    Write-Host "== Test: suites $($suites -join ', ')"
    # The Pester suites drive the built module; xunit and fuzzing build their own projects.
    if ($suites -contains 'pester' -or $suites -contains 'host' -or $suites -contains 'interop' -or $suites -contains 'kernel') { Invoke-Build }
    New-Item -ItemType Directory -Force $Artifacts | Out-Null
    $runs = @()
    if ($suites -contains 'xunit') { $runs += Invoke-XunitTests }
    if ($suites -contains 'pester' -or $suites -contains 'host' -or $suites -contains 'interop') { Restore-Pester }
    if ($suites -contains 'pester') { $runs += Invoke-PesterSuite (Join-Path $Root 'tests/Pester') 'module' }
    # The gateway host as a process (signals, sockets, the API); Linux only, and never a silent skip in CI.
    if ($suites -contains 'host') { $runs += Invoke-PesterSuite (Join-Path $Root 'tests/Host') 'host' @{ CI = $env:CI } }
    $interop = Join-Path $Root 'tests/Interop'
    if ($suites -contains 'interop' -and (Test-Path $interop) -and (Get-ChildItem $interop -Filter *.Tests.ps1 -Recurse)) {
        # Interop tests need root (namespaces, TUN) and must not skip silently: CI=true makes a skip a failure.
        $runs += Invoke-PesterSuite $interop 'interop' @{ CI = 'true' }
    }
    if ($suites -contains 'fuzz') { $runs += Invoke-FuzzCheck }
    if ($suites -contains 'kernel') { $runs += Invoke-KernelSuite }
    $passed = ($runs | ForEach-Object { $_.Passed } | Measure-Object -Sum).Sum
    $failed = ($runs | ForEach-Object { $_.Failed } | Measure-Object -Sum).Sum
    if ($failed -gt 0) {
        Write-Host "== Failures (repeated here so the end of the log names them)"
        foreach ($f in $runs | ForEach-Object { $_.Failures } | Where-Object { $_ }) {
            $text = [string]$f
            Write-Host ($text.Length -gt 600 ? $text.Substring(0, 600) + ' ...' : $text)
        }
    }
    Write-Host "$passed passed, $failed failed"
    if ($failed -gt 0) { exit 1 }
    exit 0
}

function Invoke-Demo {
    Invoke-Build
    Import-Module $Manifest -Force
    # Defaults: UDP 51820, 10.8.0.1/24 (the client pool), userspace egress (clients reach the internet
    # through this host, no privileges needed).
    $server = Start-WgServer
    # A client end to end: key pair, an address from the pool, its wg-quick file (the Endpoint is a guess
    # of this host's address, with a warning; pass -Endpoint for a real deployment).
    $client = New-WgClient -Name 'demo-client' -Server $server
    $server | Format-Table | Out-Host
    Write-Host "wg-quick config for demo-client (keep it secret: it holds the client's private key):"
    Write-Host $client.Config
    Write-Host "The same config as a QR code for the WireGuard mobile apps:"
    $client | ConvertTo-WgQRCode | Out-Host
    Write-Host "Serving; press Ctrl+C to stop."
    try { $server | Wait-WgServer }
    finally { Stop-WgServer -Name $server.Name -ErrorAction SilentlyContinue }
}

function Invoke-Bench {
    $bench = Join-Path $Root 'bench/run-bench.ps1'
    # "-Name value" pairs and bare switches, as typed after "Bench", become named parameters of run-bench.ps1
    # (an array splat would pass "-Name" as a positional string); "a,b" from -File is a list.
    $named = @{}
    for ($i = 0; $i -lt $BenchArguments.Count; $i++) {
        if ("$($BenchArguments[$i])" -notmatch '^-([A-Za-z]\w*):?$') { throw "Bench: expected a parameter name, got '$($BenchArguments[$i])'" }
        $name = $Matches[1]
        if ($i + 1 -lt $BenchArguments.Count -and "$($BenchArguments[$i + 1])" -notmatch '^-[A-Za-z]') {
            $value = $BenchArguments[++$i]
            $named[$name] = ($value -is [string] -and $value.Contains(',')) ? ($value -split ',') : $value
        } else { $named[$name] = $true }
    }
    Invoke-Build   # the end-to-end parts drive the built module
    & $bench @named
    if (-not $?) { exit 1 }
}

# The module package (tools/Package/New-ModulePackage.ps1): artifacts/package/WireGuardGateway.<version>.nupkg.
function Invoke-Package {
    Invoke-Build
    Write-Host "== Package: module package into artifacts/package"
    Invoke-Native 'packaging' { & $Pwsh[0] @($Pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $Root 'tools/Package/New-ModulePackage.ps1') -Root $Root -OutputPath (Join-Path $Artifacts 'package') | Out-Host }
}

# The production path (README, docs/host.md): the published host in the foreground, e.g. Host /etc/wireguard/wg0.conf.
function Invoke-HostRun {
    Invoke-Build
    & dotnet (Join-Path $HostBin 'WgHost.dll') @($BenchArguments | ForEach-Object { "$_" })
    exit $LASTEXITCODE
}

function Invoke-Clean {
    Invoke-Native 'dotnet clean' { dotnet clean (Join-Path $Root 'WgPowerShell.sln') -v q --nologo }
    foreach ($p in @($ModuleBin, $HostBin, $Artifacts)) { if (Test-Path $p) { Remove-Item $p -Recurse -Force } }
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Demo' { Invoke-Demo }
    'Bench' { Invoke-Bench }
    'Host' { Invoke-HostRun }
    'Package' { Invoke-Package }
    'Clean' { Invoke-Clean }
}
