<#
.SYNOPSIS
  The module package (./build.ps1 Package): WireGuardGateway.<version>.nupkg as PSResourceGet publishes
  it, from the built module (module/: manifest, formats, bin/ with the native libsodium of every runtime
  NSec ships, en-US/ help) and the LICENSE.
.DESCRIPTION
  Stages the module folder under -OutputPath/stage/WireGuardGateway, checks it (the manifest's Gallery
  fields, one libsodium per runtime of the libsodium package the engine restored), then packs it with
  PSResourceGet's Compress-PSResource (the .nupkg that Publish-PSResource would push) into -OutputPath.
  PSResourceGet keeps a repository list in the user's data folder: the packing runs in a child pwsh
  with a temporary HOME, so the user's settings stay untouched. Prints the package's path.
#>
param(
    [Parameter(Mandatory)][string] $Root,
    [Parameter(Mandatory)][string] $OutputPath
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$module = Join-Path $Root 'module'
if (-not (Test-Path (Join-Path $module 'bin/WgPowerShell.dll'))) { throw "the module is not built ($module/bin): run ./build.ps1 Build" }
$manifest = Test-ModuleManifest (Join-Path $module 'WireGuardGateway.psd1')
$psData = $manifest.PrivateData.PSData
# The PowerShell Gallery's publishing guidelines: license and project links, release notes, tags for
# the edition and the platforms.
foreach ($field in 'LicenseUri', 'ProjectUri', 'ReleaseNotes') {
    if (-not $psData[$field]) { throw "the manifest has no PrivateData.PSData.$field" }
}
$missingTags = @('PSEdition_Core', 'Linux', 'Windows', 'MacOS' | Where-Object { $_ -notin $psData.Tags })
if ($missingTags) { throw "the manifest's Tags lack $($missingTags -join ', ')" }
if (-not (Test-Path (Join-Path $Root 'LICENSE'))) { throw "no LICENSE at $Root" }

# Every runtime of the libsodium package that NSec depends on (the restored version) must be in bin/.
$assets = Get-Content -Raw (Join-Path $Root 'src/WgEngine/obj/project.assets.json') | ConvertFrom-Json -AsHashtable
$sodium = @($assets.libraries.Keys | Where-Object { $_ -like 'libsodium/*' })[0]
if (-not $sodium) { throw 'libsodium is not among the engine''s restored packages' }
$sodiumDir = Join-Path @($assets.packageFolders.Keys)[0] $assets.libraries[$sodium].path
[string[]] $rids = Get-ChildItem (Join-Path $sodiumDir 'runtimes') -Directory | ForEach-Object Name
$absent = @($rids | Where-Object { -not (Get-ChildItem (Join-Path $module "bin/runtimes/$_/native") -Filter '*sodium*' -ErrorAction Ignore) })
if ($absent) { throw "bin/runtimes lacks libsodium for $($absent -join ', ')" }

$stageRoot = Join-Path $OutputPath 'stage'
$stage = Join-Path $stageRoot $manifest.Name
if (Test-Path $stageRoot) { Remove-Item $stageRoot -Recurse -Force }
New-Item -ItemType Directory -Force $stage | Out-Null
Copy-Item (Join-Path $module 'WireGuardGateway.psd1'), (Join-Path $module 'WireGuardGateway.format.ps1xml'), (Join-Path $Root 'LICENSE') $stage
Copy-Item (Join-Path $module 'bin') (Join-Path $stage 'bin') -Recurse
Copy-Item (Join-Path $module 'en-US') (Join-Path $stage 'en-US') -Recurse

$nupkg = Join-Path $OutputPath "$($manifest.Name).$($manifest.Version).nupkg"
Remove-Item $nupkg -Force -ErrorAction Ignore
$home_ = Join-Path ([System.IO.Path]::GetTempPath()) "wgpkg-home-$PID-$(Get-Random)"
New-Item -ItemType Directory $home_ | Out-Null
try {
    $exe = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
    $psi = if (Test-Path $exe) { [System.Diagnostics.ProcessStartInfo]::new($exe) } else {
        $p = [System.Diagnostics.ProcessStartInfo]::new('dotnet'); $p.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')); $p }
    $q = { param($text) "'" + ($text -replace "'", "''") + "'" }
    foreach ($a in '-NoProfile', '-NonInteractive', '-Command',
        "`$ErrorActionPreference = 'Stop'; Compress-PSResource -Path $(& $q $stage) -DestinationPath $(& $q $OutputPath)") { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.WorkingDirectory = $home_   # PSResourceGet may leave NuGet/NuGet.Config in the current directory
    $psi.Environment['HOME'] = $home_
    foreach ($v in 'PSModulePath', 'XDG_DATA_HOME', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'LOCALAPPDATA', 'APPDATA', 'USERPROFILE') { [void]$psi.Environment.Remove($v) }
    if ($IsWindows) { $psi.Environment['USERPROFILE'] = $home_; $psi.Environment['LOCALAPPDATA'] = Join-Path $home_ 'AppData/Local' }
    $proc = [System.Diagnostics.Process]::Start($psi)
    if (-not $proc.WaitForExit(120000)) { $proc.Kill($true); throw 'Compress-PSResource did not finish within 120 s' }
    if ($proc.ExitCode -ne 0) { throw "Compress-PSResource failed (exit code $($proc.ExitCode))" }
} finally {
    Remove-Item $home_ -Recurse -Force -ErrorAction Ignore
}
if (-not (Test-Path $nupkg)) { throw "Compress-PSResource wrote no $nupkg" }
Remove-Item $stageRoot -Recurse -Force
$nupkg
