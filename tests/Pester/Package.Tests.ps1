# The module as users install it (issue 11, item 15): ./build.ps1 Package's .nupkg (packed by
# tools/Package/New-ModulePackage.ps1 from the module that the test run built) is published to a file
# repository of this test, installed with Install-PSResource into a fresh HOME by a clean pwsh, imported
# and used to start a gateway. And the engine and cmdlets build for the other platforms the manifest
# names, so code that only Linux has stays behind its guards.

BeforeAll {
    $script:root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $exe = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
    [string[]] $script:pwsh = if (Test-Path $exe) { @($exe) } else { @('dotnet', (Join-Path $PSHOME 'pwsh.dll')) }
    $script:work = Join-Path ([System.IO.Path]::GetTempPath()) "wgpkg-test-$PID-$(Get-Random)"
    New-Item -ItemType Directory $work | Out-Null

    $out = & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $root 'tools/Package/New-ModulePackage.ps1') -Root $root -OutputPath (Join-Path $work 'out')
    if ($LASTEXITCODE -ne 0) { throw "New-ModulePackage.ps1 failed (exit code $LASTEXITCODE): $out" }
    $script:nupkg = @($out)[-1]
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    $zip = [System.IO.Compression.ZipFile]::OpenRead($nupkg)
    try {
        $script:entries = @($zip.Entries | ForEach-Object FullName)
        $read = { param($name) $r = [System.IO.StreamReader]::new($zip.GetEntry($name).Open()); try { $r.ReadToEnd() } finally { $r.Dispose() } }
        $script:nuspec = [xml](& $read 'WireGuardGateway.nuspec')
        $script:license = & $read 'LICENSE'
    } finally { $zip.Dispose() }

    # The runtimes the libsodium package (NSec's dependency, the version the engine restored) ships.
    $assets = Get-Content -Raw (Join-Path $root 'src/WgEngine/obj/project.assets.json') | ConvertFrom-Json -AsHashtable
    $sodium = @($assets.libraries.Keys | Where-Object { $_ -like 'libsodium/*' })[0]
    [string[]] $script:sodiumRids = Get-ChildItem (Join-Path (Join-Path @($assets.packageFolders.Keys)[0] $assets.libraries[$sodium].path) 'runtimes') -Directory |
        ForEach-Object Name
}

AfterAll {
    if ($work) { Remove-Item $work -Recurse -Force -ErrorAction Ignore }
}

Describe './build.ps1 Package' {
    It 'packs the manifest fields the PowerShell Gallery asks for, and the MIT LICENSE' {
        $m = $nuspec.package.metadata
        $m.id | Should -Be 'WireGuardGateway'
        $m.version | Should -Be (Import-PowerShellDataFile (Join-Path $root 'module/WireGuardGateway.psd1')).ModuleVersion
        $m.description | Should -Not -BeNullOrEmpty
        $m.authors | Should -Not -BeNullOrEmpty
        ([uri]$m.projectUrl).IsAbsoluteUri | Should -BeTrue
        ([uri]$m.licenseUrl).IsAbsoluteUri | Should -BeTrue
        $m.licenseUrl | Should -BeLike "$($m.projectUrl)/*LICENSE"
        $m.releaseNotes | Should -Not -BeNullOrEmpty
        $tags = $m.tags -split ' '
        foreach ($t in 'PSModule', 'PSEdition_Core', 'Linux', 'Windows', 'MacOS') { $tags | Should -Contain $t }
        $entries | Should -Contain 'LICENSE'
        $license | Should -Match '^MIT License'
        $license | Should -BeExactly (Get-Content -Raw (Join-Path $root 'LICENSE'))
    }

    It 'holds the module (manifest, formats, cmdlets, help) and libsodium for every runtime NSec ships' {
        foreach ($f in 'WireGuardGateway.psd1', 'WireGuardGateway.format.ps1xml', 'bin/WgPowerShell.dll', 'bin/WgEngine.dll', 'bin/NSec.Cryptography.dll', 'en-US/WgPowerShell.dll-Help.xml') {
            $entries | Should -Contain $f
        }
        $sodiumRids.Count | Should -BeGreaterThan 10   # android, ios, linux(-musl), maccatalyst, osx, tvos, win
        foreach ($rid in $sodiumRids) {
            @($entries | Where-Object { $_ -like "bin/runtimes/$rid/native/*sodium*" }).Count | Should -BeGreaterThan 0 -Because "libsodium for $rid"
        }
    }

    It 'is published to a file repository, installed by Install-PSResource into a fresh HOME, imported by a clean pwsh, and starts a gateway' {
        $home_ = Join-Path $work 'home'
        $repo = Join-Path $work 'repo'
        $result = Join-Path $work 'result.json'
        New-Item -ItemType Directory $home_, $repo | Out-Null
        $name = "pkg$PID"
        $uapi = Join-Path $work "$name.sock"
        $script = @'
param($Nupkg, $Repo, $Name, $Uapi, $Result)
$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name wgtest -Uri $Repo -Trusted
Publish-PSResource -NupkgPath $Nupkg -Repository wgtest
Install-PSResource -Name WireGuardGateway -Repository wgtest -Scope CurrentUser -TrustRepository
Import-Module WireGuardGateway
$m = Get-Module WireGuardGateway
$s = Start-WgServer -Name $Name -ListenPort 0 -UapiPath $Uapi
try {
    $sodium = if ($IsLinux) { @(Get-Content "/proc/$PID/maps" | Where-Object { $_ -match 'sodium' } | ForEach-Object { ($_ -split '\s+', 6)[5] } | Select-Object -Unique) } else { @() }
    @{
        ModuleBase = $m.ModuleBase; Version = "$($m.Version)"; Published = @(Get-ChildItem $Repo -Name)
        Installed = @(Get-InstalledPSResource WireGuardGateway -Scope CurrentUser | ForEach-Object { "$($_.Name) $($_.Version) $($_.Repository)" })
        ListenPort = $s.ListenPort; PublicKey = $s.PublicKey; Running = @(Get-WgServer -Name $Name).Count
        Synopsis = (Get-Help Start-WgServer).Synopsis; Sodium = $sodium
    } | ConvertTo-Json | Set-Content -LiteralPath $Result
} finally { Stop-WgServer -Name $Name }
'@
        $scriptFile = Join-Path $work 'install.ps1'
        Set-Content -LiteralPath $scriptFile -Value $script
        # A clean pwsh: the temporary HOME is its whole user profile (CurrentUser scope, PSResourceGet's
        # repository list, caches); PSModulePath is dropped, so only the default paths and HOME's apply.
        $psi = [System.Diagnostics.ProcessStartInfo]::new($pwsh[0])
        foreach ($a in @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $scriptFile, $nupkg, $repo, $name, $uapi, $result)) { $psi.ArgumentList.Add($a) }
        $psi.UseShellExecute = $false
        $psi.WorkingDirectory = $work   # Publish-PSResource writes NuGet/NuGet.Config into the current directory
        $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
        foreach ($v in 'PSModulePath', 'XDG_DATA_HOME', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME') { [void]$psi.Environment.Remove($v) }
        $psi.Environment['HOME'] = $home_
        $psi.Environment['NO_COLOR'] = '1'
        $p = [System.Diagnostics.Process]::Start($psi)
        $stdout = $p.StandardOutput.ReadToEndAsync(); $stderr = $p.StandardError.ReadToEndAsync()
        if (-not $p.WaitForExit(120000)) { $p.Kill($true); throw 'the install run did not finish within 120 s' }
        $p.WaitForExit()
        $p.ExitCode | Should -Be 0 -Because "the install run failed: $($stderr.Result) $($stdout.Result)"

        $r = Get-Content -Raw $result | ConvertFrom-Json
        Write-Host "installed: $($r.Installed) at $($r.ModuleBase); gateway on UDP $($r.ListenPort); libsodium loaded from $($r.Sodium -join ', ')"
        $r.Published | Should -Contain (Split-Path $nupkg -Leaf)
        $r.Installed | Should -Be "WireGuardGateway $($nuspec.package.metadata.version) wgtest"
        # Imported from the fresh scope, not from this repository's module folder.
        $r.ModuleBase | Should -BeLike (Join-Path $home_ '*')
        $r.ModuleBase | Should -Not -BeLike "$root*"
        $r.Version | Should -Be $nuspec.package.metadata.version
        $r.Running | Should -Be 1
        $r.ListenPort | Should -BeGreaterThan 0
        $r.PublicKey | Should -Match '^[A-Za-z0-9+/]{43}=$'
        $r.Synopsis | Should -Not -BeNullOrEmpty
        # The key came from the package's own libsodium (loaded from under the installed module).
        if ($IsLinux) {
            @($r.Sodium).Count | Should -BeGreaterThan 0
            foreach ($lib in $r.Sodium) { $lib | Should -BeLike (Join-Path $r.ModuleBase 'bin/runtimes/*') }
        }
        Test-Path $uapi | Should -BeFalse -Because 'Stop-WgServer removes its UAPI socket'
    }

    It 'builds the engine and the cmdlets for <Rid> as well (only Linux runs them here; the build keeps the other platforms honest)' -ForEach @(
        @{ Rid = 'win-x64'; Sodium = 'libsodium.dll' }
        @{ Rid = 'osx-arm64'; Sodium = 'libsodium.dylib' }
    ) {
        $artifactsPath = Join-Path $work "build-$Rid"
        # The engine on its own (a project reference would build it without the RID), then the cmdlets.
        foreach ($project in 'src/WgEngine', 'src/WgPowerShell') {
            $log = & dotnet build (Join-Path $root $project) -c Release -r $Rid --artifacts-path $artifactsPath -v q --nologo 2>&1
            $LASTEXITCODE | Should -Be 0 -Because ($log | Out-String)
            ($log | Out-String) | Should -Match ' 0 Warning\(s\)'
        }
        $engine = Join-Path $artifactsPath "bin/WgEngine/release_$Rid/WgEngine.dll"
        $bin = Join-Path $artifactsPath "bin/WgPowerShell/release_$Rid"
        Test-Path $engine | Should -BeTrue -Because "a $Rid build of the engine"
        Test-Path (Join-Path $bin 'WgPowerShell.dll') | Should -BeTrue -Because "a $Rid build of the cmdlets"
        Test-Path (Join-Path $bin 'WgEngine.dll') | Should -BeTrue
        Get-ChildItem $bin -Recurse -Filter $Sodium | Should -Not -BeNullOrEmpty -Because "the $Rid build carries its libsodium"
    }
}
