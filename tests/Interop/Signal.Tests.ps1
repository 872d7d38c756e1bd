# The documented container entry point, `Start-WgServer ... | Wait-WgServer`, under SIGTERM (what
# `docker stop` and Kubernetes send): a real child pwsh, the real `wg` tool, a real `kill -TERM`.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $prereq = Test-WgInteropPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'Signal' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force
    $manifest = $env:WGI_GATEWAY_MODULE
    if (-not $manifest) {
        $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
        $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
        if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) { throw "WireGuardGateway is not built: run ./build.ps1 Build first" }
    }
    $script:Manifest = (Resolve-Path $manifest).Path
    Import-Module $Manifest -Force
    # The pwsh of this run: the apphost when present, else `dotnet pwsh.dll` (a dotnet tool install).
    $apphost = Join-Path $PSHOME 'pwsh'
    $script:PwshFile, $script:PwshPre = (Test-Path $apphost) ? @($apphost, @()) : @('dotnet', @((Join-Path $PSHOME 'pwsh.dll')))
}

Describe 'SIGTERM to Start-WgServer | Wait-WgServer' -Skip:$skip {
    BeforeAll {
        $net = New-WgTestNetwork
        $name = "gs$($net.RunId)"
        $cfg = Join-Path $net.TempDir 'gw.conf'
        $sock = "/var/run/wireguard/$name.sock"
        $command = "Import-Module '$Manifest'; Start-WgServer -Name $name -ListenPort 0 -Address $($net.V4Prefix).1/24 -ConfigPath '$cfg' | Wait-WgServer"
        $psi = [System.Diagnostics.ProcessStartInfo]::new($PwshFile)
        foreach ($a in @($PwshPre) + @('-NoProfile', '-NonInteractive', '-Command', $command)) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true; $psi.UseShellExecute = $false
        $child = [System.Diagnostics.Process]::Start($psi)
        $stdout = $child.StandardOutput.ReadToEndAsync()
        $stderr = $child.StandardError.ReadToEndAsync()
    }
    AfterAll {
        if ($child -and -not $child.HasExited) { $child.Kill($true); $child.WaitForExit() }
        if (Test-Path $sock) { Remove-Item $sock -Force }
        Remove-WgTestNetwork $net
    }

    It 'stops the servers cleanly and exits 0: config complete, UAPI socket removed' {
        Wait-WgCondition -TimeoutSeconds 60 -Condition { (Test-Path $sock) -and (Test-Path $cfg) } | Should -BeTrue -Because "the child serves $sock (stderr: $(if ($child.HasExited) { $stderr.Result }))"
        # A change made from outside while the gateway waits: it must be in the file after the stop.
        $peer = (New-WgKey).PublicKey
        $null = Invoke-WgNative wg 'set', $name, 'peer', $peer, 'allowed-ips', "$($net.V4Prefix).9/32"
        (Invoke-WgNative wg 'show', $name, 'peers') | Should -Contain $peer

        $null = Invoke-WgNative kill '-TERM', "$($child.Id)"
        $child.WaitForExit(30000) | Should -BeTrue -Because 'SIGTERM ends the wait'
        $child.ExitCode | Should -Be 0 -Because "stderr: $($stderr.Result)"
        Test-Path $sock | Should -BeFalse
        $null = & wg show $name 2>&1
        $LASTEXITCODE | Should -Not -Be 0 -Because 'the interface is gone'
        $text = Get-Content -Raw $cfg
        $text | Should -Match ([regex]::Escape("PublicKey = $peer"))
        $text | Should -Match 'PrivateKey = '
    }
}
