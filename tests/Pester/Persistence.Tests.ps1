# Persistence (-ConfigPath), Export-WgConfig / Import-WgConfig, and the kill -9 durability test.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:Manifest = Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1'
    Import-Module $Manifest -Force
    $script:Mode0600 = [IO.UnixFileMode]::UserRead -bor [IO.UnixFileMode]::UserWrite
    $script:Run = "wgp$PID-$([guid]::NewGuid().ToString('N').Substring(0, 6))"

    function New-RunDir([string] $Label) {
        (New-Item -ItemType Directory -Path (Join-Path ([IO.Path]::GetTempPath()) "$Run-$Label")).FullName
    }

    function Start-Persisted([string] $Dir, [hashtable] $Extra = @{}) {
        Start-WgServer -ListenPort 0 -ConfigPath (Join-Path $Dir 'wg0.conf') -UapiPath (Join-Path $Dir 'wg0.sock') @Extra
    }

}

AfterAll {
    Get-ChildItem ([IO.Path]::GetTempPath()) -Filter "$Run-*" -ErrorAction SilentlyContinue | Remove-Item -Recurse -Force
}

Describe 'Start-WgServer -ConfigPath' {
    BeforeEach { $script:dir = New-RunDir ([guid]::NewGuid().ToString('N').Substring(0, 8)) }
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'creates the file with mode 0600 and a restart restores every peer' {
        $s = Start-Persisted $dir
        $cfg = Join-Path $dir 'wg0.conf'
        (Get-Item $cfg).UnixFileMode | Should -Be $Mode0600
        $s.ConfigPath | Should -Be $cfg
        $a = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name alice -PresharedKey (New-WgPresharedKey) -PersistentKeepalive 25
        $b = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name bob -AllowedIPs 192.168.40.0/24
        $c = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name carol -ExpiresAt ([DateTimeOffset]::new(2099, 1, 2, 3, 4, 5, [TimeSpan]::Zero))
        Disable-WgPeer -PublicKey $b.PublicKey
        $before = Get-WgPeer | Sort-Object Name
        $publicKey = $s.PublicKey
        Stop-WgServer -Name wg0

        $s2 = Start-Persisted $dir
        $s2.PublicKey | Should -Be $publicKey
        $after = Get-WgPeer | Sort-Object Name
        $after.Count | Should -Be 3
        foreach ($i in 0..2) {
            foreach ($prop in 'Name', 'PublicKey', 'HasPresharedKey', 'Enabled', 'ExpiresAt', 'PersistentKeepalive') {
                $after[$i].$prop | Should -Be $before[$i].$prop -Because "$prop of $($before[$i].Name)"
            }
            $after[$i].AllowedIPs | Should -Be $before[$i].AllowedIPs
        }
        (Get-WgPeer -Name bob).Enabled | Should -BeFalse
        (Get-WgPeer -Name carol).ExpiresAt | Should -Be ([DateTimeOffset]::new(2099, 1, 2, 3, 4, 5, [TimeSpan]::Zero))
        (Get-Item $cfg).UnixFileMode | Should -Be $Mode0600
    }

    It 'refuses a corrupt file with its line number and leaves it byte-identical' {
        $cfg = Join-Path $dir 'wg0.conf'
        $k = (New-WgKey).PublicKey
        $text = "[Interface]`nAddress = 10.60.0.1/24`n`n[Peer]`nPublicKey = $k`nAllowedIPs = 10.60.0.2/32`nEndpoint = nonsense`n"
        [IO.File]::WriteAllText($cfg, $text)
        $hash = (Get-FileHash $cfg).Hash
        Start-WgServer -ListenPort 0 -ConfigPath $cfg -UapiPath (Join-Path $dir 'wg0.sock') -ErrorVariable ev -ErrorAction SilentlyContinue |
            Should -BeNullOrEmpty
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'ConfigParseError*'
        $ev[0].Exception.Message | Should -BeLike "*wg0.conf, line 7:*Endpoint*"
        (Get-FileHash $cfg).Hash | Should -Be $hash
        Get-WgServer | Should -BeNullOrEmpty
    }

    It 'refuses an empty existing file instead of starting over with a new key' {
        $cfg = Join-Path $dir 'wg0.conf'
        [IO.File]::WriteAllText($cfg, '')
        Start-WgServer -ListenPort 0 -ConfigPath $cfg -UapiPath (Join-Path $dir 'wg0.sock') -ErrorVariable ev -ErrorAction SilentlyContinue |
            Should -BeNullOrEmpty
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'ConfigFileEmpty,*'
        (Get-Item $cfg).Length | Should -Be 0
    }

    It 'warns, as wg-quick does, when the file with the private key is readable by others' {
        $null = Start-Persisted $dir
        Stop-WgServer -Name wg0
        $cfg = Join-Path $dir 'wg0.conf'
        $sock = Join-Path $dir 'wg0.sock'
        $null = Start-WgServer -ListenPort 0 -ConfigPath $cfg -UapiPath $sock -WarningVariable quiet -WarningAction SilentlyContinue
        Stop-WgServer -Name wg0
        $quiet.Count | Should -Be 0
        (Get-Item $cfg).UnixFileMode = [IO.UnixFileMode]'UserRead, UserWrite, GroupRead, OtherRead'
        $null = Start-WgServer -ListenPort 0 -ConfigPath $cfg -UapiPath $sock -WarningVariable wv -WarningAction SilentlyContinue
        $wv.Count | Should -Be 1
        "$($wv[0])" | Should -BeLike "*$cfg*readable by other users*"
    }

    It 'runs from a read-only mounted file with a warning, refuses every change, and writes nothing' -Skip:(-not $IsLinux -or ((id -u) -ne '0' -and $env:CI -ne 'true')) {
        # A read-only bind mount of the folder: what a Kubernetes Secret or `docker run -v ...:ro` gives.
        $cfg = Join-Path $dir 'wg0.conf'
        $sock = Join-Path ([IO.Path]::GetTempPath()) "$Run-ro-$([guid]::NewGuid().ToString('N').Substring(0, 6)).sock"
        $null = Start-WgServer -ListenPort 0 -ConfigPath $cfg -UapiPath $sock
        $kept = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name kept
        Stop-WgServer -Name wg0
        $hash = (Get-FileHash $cfg).Hash
        & mount --bind $dir $dir; $LASTEXITCODE | Should -Be 0
        try {
            & mount -o remount,bind,ro $dir; $LASTEXITCODE | Should -Be 0
            $s = Start-WgServer -ListenPort 0 -ConfigPath $cfg -UapiPath $sock -WarningVariable wv -WarningAction SilentlyContinue
            $s.State | Should -Be 'Running'
            $s.ConfigReadOnly | Should -BeTrue
            "$wv" | Should -BeLike "*$cfg*read-only*refuses every change*"
            (Get-WgPeer).Name | Should -Be @('kept')
            $attempts = @(
                { Add-WgPeer -PublicKey (New-WgKey).PublicKey -ErrorAction Stop }
                { Set-WgPeer -PublicKey $kept.PublicKey -Name renamed -ErrorAction Stop }
                { Disable-WgPeer -PublicKey $kept.PublicKey -ErrorAction Stop }
                { Remove-WgPeer -PublicKey $kept.PublicKey -ErrorAction Stop }
                { Set-WgServer -ListenPort 0 -ErrorAction Stop }
            )
            foreach ($a in $attempts) { $a | Should -Throw -ErrorId 'ConfigReadOnly*' -Because "$a" }
            $p = Get-WgPeer
            $p.Name | Should -Be 'kept'
            $p.Enabled | Should -BeTrue
            Stop-WgServer -Name wg0
            (Get-FileHash $cfg).Hash | Should -Be $hash
        } finally {
            Get-WgServer | Stop-WgServer
            & umount $dir
        }
        # A read-only folder without the file: refused before anything starts.
        & mount --bind $dir $dir
        try {
            & mount -o remount,bind,ro $dir
            Start-WgServer -ListenPort 0 -ConfigPath (Join-Path $dir 'new.conf') -UapiPath $sock -ErrorVariable ev -ErrorAction SilentlyContinue |
                Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'ConfigReadOnly,*'
            Get-WgServer | Should -BeNullOrEmpty
        } finally { & umount $dir }
    }

    It 'refuses a -PrivateKey that differs from the file''s' {
        $null = Start-Persisted $dir
        Stop-WgServer -Name wg0
        $other = (New-WgKey).PrivateKey
        $null = Start-WgServer -ListenPort 0 -ConfigPath (Join-Path $dir 'wg0.conf') -UapiPath (Join-Path $dir 'wg0.sock') -PrivateKey $other -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'ConfigConflict*'
        $ev[0].Exception.Message | Should -Not -Match ([regex]::Escape($other))
    }
}

Describe 'Export-WgConfig and Import-WgConfig' {
    BeforeEach { $script:dir = New-RunDir ([guid]::NewGuid().ToString('N').Substring(0, 8)) }
    AfterEach { Get-WgServer | Stop-WgServer }

    It 'outputs text without the private key unless asked, and writes a 0600 file with it' {
        $key = New-WgKey
        $null = Start-WgServer -ListenPort 0 -PrivateKey $key.PrivateKey -UapiPath (Join-Path $dir 'x.sock')
        $null = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name one
        $text = Export-WgConfig
        $text | Should -Not -Match 'PrivateKey'
        $text | Should -Match '#! Name = one'
        (Export-WgConfig -IncludePrivateKey) | Should -Match ([regex]::Escape("PrivateKey = $($key.PrivateKey)"))
        $show = Export-WgConfig -Format ShowConf
        $show | Should -Not -Match 'Address|#'
        $file = Join-Path $dir 'out.conf'
        Export-WgConfig -Path $file -WhatIf
        Test-Path $file | Should -BeFalse
        Export-WgConfig -Path $file
        (Get-Item $file).UnixFileMode | Should -Be $Mode0600
        Get-Content -Raw $file | Should -Match ([regex]::Escape("PrivateKey = $($key.PrivateKey)"))
    }

    It 'leaves the preshared keys out of the text unless -IncludePresharedKey, and writes them to a -Path file' {
        $null = Start-WgServer -ListenPort 0 -UapiPath (Join-Path $dir 'p.sock')
        $psk = New-WgPresharedKey
        $null = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name withpsk -PresharedKey $psk
        foreach ($format in 'WgQuick', 'ShowConf') {
            $text = Export-WgConfig -Format $format
            $text | Should -Not -Match 'PresharedKey' -Because $format
            $text | Should -Not -Match ([regex]::Escape($psk)) -Because $format
            (Export-WgConfig -Format $format -IncludePresharedKey) | Should -Match ([regex]::Escape("PresharedKey = $psk")) -Because $format
        }
        (Export-WgConfig -IncludePresharedKey) | Should -Not -Match 'PrivateKey'
        $file = Join-Path $dir 'psk.conf'
        Export-WgConfig -Path $file
        Get-Content -Raw $file | Should -Match ([regex]::Escape("PresharedKey = $psk"))
    }

    It 'round-trips peers (names, PSK, disabled, expiry) from one server to another' {
        $null = Start-WgServer -Name src -ListenPort 0 -Address 10.61.0.1/24 -UapiPath (Join-Path $dir 's.sock')
        $exp = [DateTimeOffset]::new(2098, 5, 6, 7, 8, 9, [TimeSpan]::Zero)
        $p1 = Add-WgPeer -Server src -PublicKey (New-WgKey).PublicKey -Name one -PresharedKey (New-WgPresharedKey) -Endpoint 127.0.0.1:51999
        $p2 = Add-WgPeer -Server src -PublicKey (New-WgKey).PublicKey -Name two -ExpiresAt $exp
        $p3 = Add-WgPeer -Server src -PublicKey (New-WgKey).PublicKey -Name three
        Disable-WgPeer -Server src -PublicKey $p3.PublicKey
        $file = Join-Path $dir 'src.conf'
        Export-WgConfig -Server src -Path $file

        $null = Start-WgServer -Name dst -ListenPort 0 -Address 10.61.0.1/24 -UapiPath (Join-Path $dir 'd.sock')
        $out = Import-WgConfig -Server dst -Path $file
        $out.Count | Should -Be 3
        $src = Get-WgPeer -Server src | Sort-Object Name
        $dst = Get-WgPeer -Server dst | Sort-Object Name
        foreach ($i in 0..2) {
            foreach ($prop in 'Name', 'PublicKey', 'HasPresharedKey', 'Enabled', 'ExpiresAt', 'Endpoint') {
                $dst[$i].$prop | Should -Be $src[$i].$prop -Because "$prop of $($src[$i].Name)"
            }
            $dst[$i].AllowedIPs | Should -Be $src[$i].AllowedIPs
        }
        # Text in, and per-peer failures: the duplicates fail, a new one still goes in.
        $extra = (New-WgKey).PublicKey
        $content = (Export-WgConfig -Server src) + "`n[Peer]`nPublicKey = $extra`nAllowedIPs = 10.61.0.200/32`n"
        $added = Import-WgConfig -Server dst -Content $content -ErrorVariable ev -ErrorAction SilentlyContinue
        $added.PublicKey | Should -Be @($extra)
        $ev.Count | Should -Be 3
        $ev | ForEach-Object { $_.FullyQualifiedErrorId | Should -BeLike 'PeerAlreadyExists*' }
    }

    It 'Import-WgConfig -WhatIf adds nothing, and a parse error names the line' {
        $null = Start-WgServer -ListenPort 0 -UapiPath (Join-Path $dir 'w.sock')
        $content = "[Peer]`nPublicKey = $((New-WgKey).PublicKey)`nAllowedIPs = 10.8.0.9/32`n"
        Import-WgConfig -Content $content -WhatIf
        (Get-WgServer).PeerCount | Should -Be 0
        Import-WgConfig -Content "[Peer]`nAllowedIPs = 10.8.0.9/32" -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev[0].Exception.Message | Should -BeLike '-Content, line 1:*no PublicKey*'
    }
}

Describe 'Durability under kill -9' {
    It 'after a SIGKILL at a random moment the file parses and holds every confirmed change' {
        $dir = New-RunDir 'kill'
        $cfg = Join-Path $dir 'wg0.conf'
        $child = Join-Path $dir 'child.ps1'
        # The child prints BEGIN before and OK after each change; only OK lines are confirmed.
        @'
param($Manifest, $Cfg, $Sock, $Seed)
$ErrorActionPreference = 'Stop'
Import-Module $Manifest
$null = Start-WgServer -ListenPort 0 -ConfigPath $Cfg -UapiPath $Sock -Address 10.70.0.1/16
$rng = [Random]::new($Seed)
$keys = [Collections.Generic.List[string]]::new()
Get-WgPeer | ForEach-Object { $keys.Add($_.PublicKey) }
function Say($s) { [Console]::Out.WriteLine($s); [Console]::Out.Flush() }
Say 'READY'
for ($i = 0; $i -lt 100000; $i++) {
    $op = if ($keys.Count -lt 3) { 0 } else { $rng.Next(5) }
    if ($op -eq 0) {
        $batch = 1..($rng.Next(1, 6)) | ForEach-Object { [pscustomobject]@{ PublicKey = (New-WgKey).PublicKey; Name = "n$i-$_" } }
        Say ("BEGIN ADD " + ($batch.PublicKey -join ','))
        $batch | Add-WgPeer | ForEach-Object { $keys.Add($_.PublicKey); Say "OK ADD $($_.PublicKey) $($_.Name)" }
        continue
    }
    $k = $keys[$rng.Next($keys.Count)]
    switch ($op) {
        1 { Say "BEGIN SET $k"; Set-WgPeer -PublicKey $k -Name "r$i"; Say "OK SET $k r$i" }
        2 { Say "BEGIN REM $k"; Remove-WgPeer -PublicKey $k -Confirm:$false; $null = $keys.Remove($k); Say "OK REM $k" }
        3 { Say "BEGIN DIS $k"; Disable-WgPeer -PublicKey $k -Confirm:$false; Say "OK DIS $k" }
        4 { Say "BEGIN ENA $k"; Enable-WgPeer -PublicKey $k; Say "OK ENA $k" }
    }
}
'@ | Set-Content -Path $child

        $expected = @{}   # key -> @{ Name; Enabled }, confirmed state across all iterations
        # The pwsh of this run: the apphost when present, else `dotnet pwsh.dll` (a dotnet tool install).
        $apphost = Join-Path $PSHOME 'pwsh'
        $pwsh, $pre = (Test-Path $apphost) ? @($apphost, @()) : @('dotnet', @((Join-Path $PSHOME 'pwsh.dll')))
        $rng = [Random]::new()
        try {
            foreach ($iteration in 1..3) {
                $outFile = Join-Path $dir "out$iteration.txt"
                $p = Start-Process -FilePath $pwsh -PassThru -RedirectStandardOutput $outFile -RedirectStandardError (Join-Path $dir "err$iteration.txt") `
                    -ArgumentList @($pre + @('-NoProfile', '-NonInteractive', '-File', $child, $Manifest, $cfg, (Join-Path $dir "c$iteration.sock"), $rng.Next()))
                try {
                    $target = $rng.Next(3, 80)
                    $ok = Wait-Until { (Test-Path $outFile) -and @(Get-Content $outFile | Where-Object { $_ -like 'OK *' }).Count -ge $target } -Seconds 60
                    $ok | Should -BeTrue -Because "the child should confirm $target changes (stderr: $(Get-Content -Raw (Join-Path $dir "err$iteration.txt") -ErrorAction SilentlyContinue))"
                    Start-Sleep -Milliseconds ($rng.Next(0, 40))   # land anywhere inside the next change
                }
                finally {
                    & kill -9 $p.Id
                    $null = $p.WaitForExit(10000)
                }
                $p.HasExited | Should -BeTrue

                # Only complete lines count (the kill may cut the last one).
                $raw = [IO.File]::ReadAllText($outFile)
                $lines = $raw.Substring(0, $raw.LastIndexOf("`n") + 1) -split "`n" | Where-Object { $_ }
                $pending = @()
                foreach ($line in $lines) {
                    $f = $line -split ' '
                    switch ($f[0]) {
                        'BEGIN' { $pending = $f[2] -split ',' }
                        'OK' {
                            switch ($f[1]) {
                                'ADD' { $expected[$f[2]] = @{ Name = $f[3]; Enabled = $true } }
                                'SET' { $expected[$f[2]].Name = $f[3] }
                                'REM' { $expected.Remove($f[2]) }
                                'DIS' { $expected[$f[2]].Enabled = $false }
                                'ENA' { $expected[$f[2]].Enabled = $true }
                            }
                            if ($f[1] -ne 'ADD' -or $f[2] -eq $pending[-1]) { $pending = @() }
                            else { $pending = @($pending | Where-Object { $_ -ne $f[2] }) }
                        }
                    }
                }

                # The file as a restart sees it.
                $null = Start-WgServer -Name check -ListenPort 0 -ConfigPath $cfg -UapiPath (Join-Path $dir "check$iteration.sock")
                try {
                    $onDisk = @{}
                    Get-WgPeer -Server check | ForEach-Object { $onDisk[$_.PublicKey] = $_ }
                    foreach ($k in $expected.Keys) {
                        if ($pending -contains $k) { continue }   # its unconfirmed change may or may not have landed
                        $onDisk.ContainsKey($k) | Should -BeTrue -Because "confirmed peer $k must be on disk"
                        $onDisk[$k].Name | Should -Be $expected[$k].Name
                        $onDisk[$k].Enabled | Should -Be $expected[$k].Enabled
                    }
                    foreach ($k in $onDisk.Keys) {
                        ($expected.ContainsKey($k) -or $pending -contains $k) | Should -BeTrue -Because "peer $k on disk was confirmed or in flight"
                    }
                    # Adopt the file's view of the one in-flight change for the next round.
                    foreach ($k in $pending) {
                        if ($onDisk.ContainsKey($k)) { $expected[$k] = @{ Name = $onDisk[$k].Name; Enabled = $onDisk[$k].Enabled } }
                        else { $expected.Remove($k) }
                    }
                }
                finally { Stop-WgServer -Name check }
            }
        }
        finally { Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue }
    }
}
