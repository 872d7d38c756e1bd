# Scale (issue 7 item 5): 100,000 peers on one gateway, through the cmdlets. The bounds are loose on
# purpose (CI machines are shared and slow); bench/scale/scale-peers.ps1 measures the real figures.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force

    # Random 32-byte public keys: any 32 bytes are a valid key for the cmdlet, and generating 100,000
    # X25519 key pairs would dominate the test's time.
    function New-RandomPeerObjects([int] $Count) {
        $rng = [System.Security.Cryptography.RandomNumberGenerator]
        $bytes = [byte[]]::new(32)
        $list = [System.Collections.Generic.List[object]]::new($Count)
        for ($i = 0; $i -lt $Count; $i++) {
            $rng::Fill($bytes)
            $list.Add([pscustomobject]@{ PublicKey = [Convert]::ToBase64String($bytes) })
        }
        , $list
    }
    function Get-WorkingSet { [System.Diagnostics.Process]::GetCurrentProcess().WorkingSet64 }   # a new Process object reads /proc afresh
}

Describe 'Scale: 100,000 peers' {
    AfterEach {
        Get-WgServer | Stop-WgServer
        if ($script:conf) { Remove-Item $script:conf, "$($script:conf).*" -ErrorAction SilentlyContinue }
    }

    It 'takes 100,000 piped peers in < 30 s, lists them in < 5 s, grows the working set by < 1 GiB' -TestCases @(
        @{ WithFile = $false }, @{ WithFile = $true }
    ) {
        param($WithFile)
        $n = 100000
        $objects = New-RandomPeerObjects $n
        $script:conf = $null
        $start = @{ ListenPort = 0; Address = '10.64.0.1/14'; Name = "scale$PID" }
        if ($WithFile) { $script:conf = Join-Path ([IO.Path]::GetTempPath()) "wg-scale-test-$PID.conf"; $start.ConfigPath = $script:conf }
        $srv = Start-WgServer @start
        [GC]::Collect()
        $ws0 = Get-WorkingSet

        $addresses = [System.Collections.Generic.HashSet[string]]::new()
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $objects | Add-WgPeer -Server $srv.Name | ForEach-Object { [void]$addresses.Add($_.AllowedIPs[0]) }
        $addSeconds = $sw.Elapsed.TotalSeconds
        $addSeconds | Should -BeLessThan 30
        $addresses.Count | Should -Be $n            # every peer came out, each with its own address
        $srv.PeerCount | Should -Be $n

        $sw.Restart()
        $listed = (Get-WgPeer -Server $srv.Name | Measure-Object).Count
        $getSeconds = $sw.Elapsed.TotalSeconds
        $listed | Should -Be $n
        $getSeconds | Should -BeLessThan 5

        ((Get-WorkingSet) - $ws0) | Should -BeLessThan 1GB
        if ($WithFile) {
            # Committed to the file: one [Peer] section per peer.
            (Select-String -LiteralPath $script:conf -Pattern '^\[Peer\]$' -AllMatches | Measure-Object).Count | Should -Be $n
        }
        Write-Host ("    {0} peers{1}: add {2:N1} s ({3:N0}/s), Get-WgPeer {4:N2} s" -f $n, ($WithFile ? ' with -ConfigPath' : ''), $addSeconds, ($n / $addSeconds), $getSeconds)
    }

    # Add-WgPeer builds its per-peer verbose message only when verbose output is on: check both ways of turning it on.
    It 'still writes a verbose line per peer with -Verbose or $VerbosePreference, and none without' {
        $null = Start-WgServer -ListenPort 0 -Address 10.65.0.1/24 -Name "verb$PID"
        $objs = New-RandomPeerObjects 3
        $withSwitch = $objs[0] | Add-WgPeer -Verbose 4>&1
        @($withSwitch | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'Added peer*' }).Count | Should -Be 1
        $withPreference = & { $VerbosePreference = 'Continue'; $objs[1] | Add-WgPeer 4>&1 }
        @($withPreference | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Count | Should -Be 1
        $without = $objs[2] | Add-WgPeer 4>&1
        @($without | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Count | Should -Be 0
        @($without).Count | Should -Be 1
    }
}
