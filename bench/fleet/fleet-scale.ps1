#!/usr/bin/env pwsh
<#
.SYNOPSIS
  The fleet at scale (docs/fleet.md): a private PostgreSQL cluster (made and removed here, on loopback),
  -Peers peers in its registry, then bench/FleetBench measures one instance joining (time, memory), its
  database load at idle, and change propagation p50/p99 under -Rate changes per second (-Changes of them,
  at most 60 s).
.EXAMPLE
  dotnet pwsh -NoProfile -File bench/fleet/fleet-scale.ps1 -Peers 100000 -OutJson artifacts/bench/fleet.json
#>
param(
    [int] $Peers = 100000,
    [int] $Changes = 5000,
    [int] $Rate = 1000,
    [int] $IdleSeconds = 30,
    # The instance's MinSyncInterval (its default: 50 ms); 0 syncs on every notification.
    [int] $MinSyncMs = 50,
    [Parameter(Mandatory)][string] $OutJson
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../../tests/Interop/FleetSupport.psm1') -Force
$dir = Join-Path ([IO.Path]::GetTempPath()) "wgfleet-bench-$PID"
New-Item -ItemType Directory -Force $dir | Out-Null
$pg = $null
try {
    $pg = New-FleetPostgres -Folder $dir
    $project = Join-Path $PSScriptRoot '../FleetBench'
    & dotnet run -c Release --project $project -- $pg.ConnectionString $OutJson $Peers $Changes $Rate $IdleSeconds $MinSyncMs | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "FleetBench exited $LASTEXITCODE" }
} finally {
    Remove-FleetPostgres $pg
    Remove-Item -LiteralPath $dir -Recurse -Force -ErrorAction Ignore
}
