<#
.SYNOPSIS
  Benchmark entry point (build.ps1 Bench): the end-to-end iperf3 comparison (bench/e2e/hub-iperf.ps1)
  and, with -Micro, the BenchmarkDotNet micro-benchmarks in bench/WgEngine.Bench.
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/run-bench.ps1 -Duration 10 -Rounds 3
#>
[CmdletBinding()]
param(
    [int]$Duration = 10,
    [int]$Rounds = 3,
    [switch]$Micro,                   # also run BenchmarkDotNet (minutes)
    [string]$MicroFilter = '*',
    [switch]$SkipE2E,
    [string]$OutDir = (Join-Path (Resolve-Path (Join-Path $PSScriptRoot '..')).Path 'artifacts/bench')
)
$ErrorActionPreference = 'Stop'
$env:NO_COLOR = '1'
New-Item -ItemType Directory -Force -Path $OutDir | Out-Null

# The machine description that goes next to every figure (docs/performance.md).
$cpu = (& lscpu 2>$null | Select-String '^Model name:\s*(.*)$' | Select-Object -First 1)
Write-Host ("machine: {0}, {1} cores, Linux {2}, load avg {3}" -f $(if ($cpu) { $cpu.Matches[0].Groups[1].Value } else { '?' }),
    [Environment]::ProcessorCount, (& uname -r), (((Get-Content /proc/loadavg) -split ' ')[0..2] -join ' '))
Write-Host ("tools: {0}; {1}" -f ((& wireguard-go --version 2>$null | Select-Object -First 1)), ((& iperf3 --version 2>$null | Select-Object -First 1)))

$failed = $false
if (-not $SkipE2E) {
    $json = Join-Path $OutDir 'e2e-hub-iperf.json'
    & (Join-Path $PSScriptRoot 'e2e/hub-iperf.ps1') -Duration $Duration -Rounds $Rounds -OutJson $json
    if (-not $?) { $failed = $true }
    Write-Host "e2e results: $json"
}
if ($Micro) {
    $proj = Join-Path $PSScriptRoot 'WgEngine.Bench'
    & dotnet run -c Release --project $proj -- --filter $MicroFilter --artifacts (Join-Path $OutDir 'micro')
    if ($LASTEXITCODE -ne 0) { $failed = $true }
}
if ($failed) { exit 1 }
