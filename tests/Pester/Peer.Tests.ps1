BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../../module/WireGuardGateway.psd1') -Force
}

Describe 'Peers' {
    AfterEach {
        Get-WgServer | Stop-WgServer
    }

    Describe 'Add-WgPeer' {
        BeforeEach { $script:srv = Start-WgServer -ListenPort 0 -Address 10.20.0.1/22 }

        It 'outputs a WgPeer with the contract properties' {
            $k = (New-WgKey).PublicKey
            $psk = New-WgPresharedKey
            $p = Add-WgPeer -PublicKey $k -Name alice -PresharedKey $psk -Endpoint '127.0.0.1:51999' -PersistentKeepalive 25
            $p.GetType().Name | Should -Be 'WgPeer'
            $p.Server | Should -Be 'wg0'
            $p.Name | Should -Be 'alice'
            $p.PublicKey | Should -Be $k
            , $p.AllowedIPs | Should -BeOfType ([string[]])
            $p.AllowedIPs | Should -Be @('10.20.0.2/32')
            $p.Endpoint | Should -Be '127.0.0.1:51999'
            $p.LatestHandshake | Should -BeNullOrEmpty
            $p.ReceivedBytes | Should -Be 0
            $p.SentBytes | Should -Be 0
            $p.PersistentKeepalive | Should -Be 25
            $p.HasPresharedKey | Should -BeTrue
            ($p | Out-String) | Should -Not -Match ([regex]::Escape($psk))
            (Get-WgServer).PeerCount | Should -Be 1
        }

        It 'formats an IPv6 endpoint as [addr]:port' {
            (Add-WgPeer -PublicKey (New-WgKey).PublicKey -Endpoint '[::1]:51000').Endpoint | Should -Be '[::1]:51000'
        }

        It 'takes 1,000 peers from objects in one pipeline, with distinct allocated addresses' {
            $objs = 1..1000 | ForEach-Object { [pscustomobject]@{ PublicKey = (New-WgKey).PublicKey; Name = "bulk$_" } }
            $out = $objs | Add-WgPeer
            $out.Count | Should -Be 1000
            ($out.AllowedIPs | Select-Object -Unique).Count | Should -Be 1000
            $out.AllowedIPs | Should -Not -Contain '10.20.0.1/32'
            $out.AllowedIPs | Should -Not -Contain '10.20.0.0/32'
            (Get-WgServer).PeerCount | Should -Be 1000
            (Get-WgPeer -Name bulk500).PublicKey | Should -Be $objs[499].PublicKey
        }

        It 'takes peers from CSV with explicit AllowedIPs (a cell may hold several)' {
            $a = (New-WgKey).PublicKey; $b = (New-WgKey).PublicKey
            $csv = "PublicKey,Name,AllowedIPs`n$a,site-a,""10.50.0.0/24, 10.51.0.0/24""`n$b,site-b,10.52.0.0/24"
            $out = $csv | ConvertFrom-Csv | Add-WgPeer
            $out.Count | Should -Be 2
            (Get-WgPeer -Name site-a).AllowedIPs | Should -Be @('10.50.0.0/24', '10.51.0.0/24')
            (Get-WgPeer -Name site-b).AllowedIPs | Should -Be @('10.52.0.0/24')
        }

        It 'reports a duplicate key per item and still adds the rest' {
            $k = (New-WgKey).PublicKey; $other = (New-WgKey).PublicKey
            $out = @([pscustomobject]@{ PublicKey = $k }, [pscustomobject]@{ PublicKey = $k }, [pscustomobject]@{ PublicKey = $other }) |
                Add-WgPeer -ErrorVariable ev -ErrorAction SilentlyContinue
            $out.Count | Should -Be 2
            $ev.Count | Should -Be 1
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerAlreadyExists,*'
            $ev[0].CategoryInfo.Category | Should -Be 'ResourceExists'
        }

        It 'reports overlapping AllowedIPs naming the other peer' {
            $null = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name branch -AllowedIPs 192.168.10.0/24
            Add-WgPeer -PublicKey (New-WgKey).PublicKey -AllowedIPs 192.168.10.7/32 -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'AllowedIPsOverlap,*'
            $ev[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            $ev[0].Exception.Message | Should -Match "'branch'"
            Add-WgPeer -PublicKey (New-WgKey).PublicKey -AllowedIPs 10.20.0.1/32 -ErrorVariable ev2 -ErrorAction SilentlyContinue
            $ev2[0].FullyQualifiedErrorId | Should -BeLike 'AllowedIPsOverlap,*'
            (Get-WgServer).PeerCount | Should -Be 1
        }

        It 'refuses malformed keys, prefixes and endpoints at binding, naming the parameter' -ForEach @(
            @{ P = @{ PublicKey = 'not-a-key' }; Name = 'PublicKey' }
            @{ P = @{ PublicKey = [Convert]::ToBase64String([byte[]]::new(31)) }; Name = 'PublicKey' }
            @{ P = @{ PresharedKey = 'xyz' }; Name = 'PresharedKey' }
            @{ P = @{ AllowedIPs = '10.1.2.3/40' }; Name = 'AllowedIPs' }
            @{ P = @{ Endpoint = 'nohost' }; Name = 'Endpoint' }
        ) {
            $params = @{ PublicKey = (New-WgKey).PublicKey } + @{}
            foreach ($k in $P.Keys) { $params[$k] = $P[$k] }
            { Add-WgPeer @params } | Should -Throw -ErrorId 'ParameterArgumentValidationError*' -ExpectedMessage "*'$Name'*"
            (Get-WgServer).PeerCount | Should -Be 0
        }

        It 'takes a host-name endpoint as config files do: resolved once, the name kept for the file' {
            $p = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Endpoint localhost:52999
            $p.Endpoint | Should -BeIn @('127.0.0.1:52999', '[::1]:52999')
            (Export-WgConfig) | Should -Match 'Endpoint = localhost:52999'
            $q = Set-WgPeer -PublicKey $p.PublicKey -Endpoint localhost:52998 -PassThru
            $q.Endpoint | Should -BeIn @('127.0.0.1:52998', '[::1]:52998')
            (Export-WgConfig) | Should -Match 'Endpoint = localhost:52998'
            Add-WgPeer -PublicKey (New-WgKey).PublicKey -Endpoint "no-such-host-$PID.invalid:51820" -ErrorVariable ev -ErrorAction SilentlyContinue |
                Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'EndpointNotResolved,*'
            (Get-WgServer).PeerCount | Should -Be 1
        }

        It 'refuses an all-zero public key: no handshake could ever complete with it' {
            Add-WgPeer -PublicKey ([Convert]::ToBase64String([byte[]]::new(32))) -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'InvalidPeerPublicKey,*'
            $ev[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            (Get-WgServer).PeerCount | Should -Be 0
        }

        It 'refuses a name of 10,000 characters' {
            Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name ('n' * 10000) -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'InvalidPeerName,*'
            (Get-WgServer).PeerCount | Should -Be 0
        }

        It 'keeps the preshared keys of CSV rows refused at validation out of the error records' -ForEach @(
            @{ Column = 'PublicKey'; Value = 'not-a-key' }
            @{ Column = 'AllowedIPs'; Value = '10.1.2.3/40' }
            @{ Column = 'Endpoint'; Value = 'nohost' }
            @{ Column = 'PersistentKeepalive'; Value = 'often' }
            @{ Column = 'PresharedKey'; Value = 'bad-psk-c2VjcmV0' }
            @{ Column = 'ExpiresAt'; Value = 'someday' }
        ) {
            $psk = New-WgPresharedKey
            $bad = [ordered]@{ PublicKey = (New-WgKey).PublicKey; AllowedIPs = ''; Endpoint = ''; PersistentKeepalive = '0'; ExpiresAt = ''; PresharedKey = $psk }
            $bad[$Column] = $Value
            $ok = [ordered]@{ PublicKey = (New-WgKey).PublicKey; AllowedIPs = ''; Endpoint = ''; PersistentKeepalive = '25'; ExpiresAt = '2099-01-01T00:00:00Z'; PresharedKey = $psk }
            $csv = Join-Path $TestDrive 'rows.csv'
            [pscustomobject]$bad, [pscustomobject]$ok | Export-Csv -Path $csv
            $added = Import-Csv $csv | Add-WgPeer -ErrorVariable ev -ErrorAction SilentlyContinue
            $added.PublicKey | Should -Be @($ok.PublicKey)
            $ev.Count | Should -Be 1
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentValidationError,*'
            $ev[0].Exception.Message | Should -Match "parameter '$Column'"
            $secrets = @([regex]::Escape($psk)) + @(if ($Column -eq 'PresharedKey') { 'c2VjcmV0' })
            foreach ($s in $secrets) {
                "$($ev[0].TargetObject)" | Should -Not -Match $s
                "$($ev[0].CategoryInfo)" | Should -Not -Match $s
                ($ev[0] | Get-Error | Out-String) | Should -Not -Match $s
            }
        }

        It '-WhatIf adds nothing' {
            Add-WgPeer -PublicKey (New-WgKey).PublicKey -WhatIf | Should -BeNullOrEmpty
            (Get-WgServer).PeerCount | Should -Be 0
        }
    }

    Describe 'Address pool through the cmdlets' {
        It 'exhausts a /30 with AddressPoolExhausted and reuses a freed address' {
            $null = Start-WgServer -ListenPort 0 -Address 10.40.0.1/30
            $k1 = (New-WgKey).PublicKey; $k2 = (New-WgKey).PublicKey
            $p1 = Add-WgPeer -PublicKey $k1
            $p1.AllowedIPs | Should -Be @('10.40.0.2/32')
            Add-WgPeer -PublicKey $k2 -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'AddressPoolExhausted,*'
            $ev[0].CategoryInfo.Category | Should -Be 'LimitsExceeded'
            Remove-WgPeer -PublicKey $k1 -Confirm:$false
            (Add-WgPeer -PublicKey $k2).AllowedIPs | Should -Be @('10.40.0.2/32')
        }

        It 'allocates one address per family on a dual-stack server, never the gateway''s' {
            $null = Start-WgServer -ListenPort 0 -Address 10.41.0.1/24, fd00:41::1/64
            $p = Add-WgPeer -PublicKey (New-WgKey).PublicKey
            $p.AllowedIPs | Should -Be @('10.41.0.2/32', 'fd00:41::2/128')
        }
    }

    Describe 'Get-WgPeer / Remove-WgPeer / Set-WgPeer' {
        BeforeEach {
            $script:srv = Start-WgServer -ListenPort 0
            $script:peers = 'old1', 'old2', 'new1' | ForEach-Object { Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name $_ }
        }

        It 'filters by key and by name with wildcards' {
            (Get-WgPeer).Count | Should -Be 3
            (Get-WgPeer -Name old*).Name | Sort-Object | Should -Be @('old1', 'old2')
            (Get-WgPeer -PublicKey $peers[2].PublicKey).Name | Should -Be 'new1'
            Get-WgPeer -PublicKey (New-WgKey).PublicKey -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerNotFound,*'
            Get-WgPeer -Name zzz* | Should -BeNullOrEmpty
        }

        It 'removes from the pipeline: Get-WgPeer -Name old* | Remove-WgPeer' {
            Get-WgPeer -Name old* | Remove-WgPeer
            (Get-WgPeer).Name | Should -Be @('new1')
            # The freed addresses go back to the pool: the lowest comes first.
            (Add-WgPeer -PublicKey (New-WgKey).PublicKey).AllowedIPs | Should -Be @('10.8.0.2/32')
        }

        It 'reports an unknown key as ObjectNotFound and goes on' {
            $unknown = (New-WgKey).PublicKey
            $unknown, $peers[0].PublicKey | Remove-WgPeer -ErrorVariable ev -ErrorAction SilentlyContinue
            $ev.Count | Should -Be 1
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerNotFound,*'
            $ev[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
            (Get-WgPeer).Count | Should -Be 2
        }

        It 'Set-WgPeer from the pipeline changes each peer, outputs after the commit, and fails an item on its own' {
            $unknown = [pscustomobject]@{ PublicKey = (New-WgKey).PublicKey }
            $out = @($peers[0], $unknown, $peers[1]) | Set-WgPeer -PersistentKeepalive 33 -PassThru -ErrorVariable ev -ErrorAction SilentlyContinue
            $out.PublicKey | Should -Be @($peers[0].PublicKey, $peers[1].PublicKey)
            $out | ForEach-Object { $_.PersistentKeepalive | Should -Be 33 }
            $ev.Count | Should -Be 1
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerNotFound,*'
            (Get-WgPeer -PublicKey $peers[2].PublicKey).PersistentKeepalive | Should -Be 0
        }

        It 'Remove-WgPeer from the pipeline removes every key given twice only once' {
            $peers[0], $peers[0], $peers[1] | Remove-WgPeer -ErrorVariable ev -ErrorAction SilentlyContinue
            (Get-WgPeer).Name | Should -Be @('new1')
            $ev.Count | Should -Be 1
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerNotFound,*'
        }

        It 'Disable-, Enable- and Remove-WgPeer take -Name with wildcards; an unknown exact name is PeerNotFound' {
            Disable-WgPeer -Name old* -Confirm:$false
            (Get-WgPeer | Where-Object { -not $_.Enabled }).Name | Sort-Object | Should -Be @('old1', 'old2')
            Enable-WgPeer -Name OLD2 -PassThru | ForEach-Object { $_.Enabled | Should -BeTrue }
            (Get-WgPeer -Name old2).Enabled | Should -BeTrue
            Remove-WgPeer -Name old1, nobody -Confirm:$false -ErrorVariable ev -ErrorAction SilentlyContinue
            (Get-WgPeer).Name | Sort-Object | Should -Be @('new1', 'old2')
            $ev.Count | Should -Be 1
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerNotFound,*'
            Remove-WgPeer -Name zz* -Confirm:$false -ErrorVariable ev2
            $ev2 | Should -BeNullOrEmpty
            (Get-WgPeer).Count | Should -Be 2
        }

        It 'Remove-WgPeer -WhatIf removes nothing' {
            Get-WgPeer | Remove-WgPeer -WhatIf
            (Get-WgPeer).Count | Should -Be 3
        }

        It 'Set-WgPeer changes a peer in place' {
            $k = $peers[0].PublicKey
            $psk = New-WgPresharedKey
            $p = Set-WgPeer -PublicKey $k -Name renamed -AllowedIPs 10.8.0.100/32, 172.30.0.0/16 -PresharedKey $psk -Endpoint 127.0.0.1:40001 -PersistentKeepalive 15 -PassThru
            $p.Name | Should -Be 'renamed'
            $p.AllowedIPs | Should -Be @('10.8.0.100/32', '172.30.0.0/16')
            $p.HasPresharedKey | Should -BeTrue
            $p.Endpoint | Should -Be '127.0.0.1:40001'
            $p.PersistentKeepalive | Should -Be 15
            $again = Get-WgPeer -PublicKey $k
            $again.Name | Should -Be 'renamed'
            Set-WgPeer -PublicKey $k -PresharedKey ''
            (Get-WgPeer -PublicKey $k).HasPresharedKey | Should -BeFalse
            (Get-WgPeer -PublicKey $k).Name | Should -Be 'renamed'
        }

        It 'Set-WgPeer refuses an overlap and leaves the peer unchanged' {
            Set-WgPeer -PublicKey $peers[0].PublicKey -AllowedIPs $peers[1].AllowedIPs -ErrorVariable ev -ErrorAction SilentlyContinue
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'AllowedIPsOverlap,*'
            (Get-WgPeer -PublicKey $peers[0].PublicKey).AllowedIPs | Should -Be $peers[0].AllowedIPs
        }

        It 'Set-WgPeer -WhatIf changes nothing; an unknown key is PeerNotFound' {
            Set-WgPeer -PublicKey $peers[0].PublicKey -Name changed -WhatIf
            (Get-WgPeer -PublicKey $peers[0].PublicKey).Name | Should -Be 'old1'
            Set-WgPeer -PublicKey (New-WgKey).PublicKey -Name x -ErrorVariable ev -ErrorAction SilentlyContinue
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerNotFound,*'
        }

        It 'shows the peer table view with a short key and transfer' {
            $text = Get-WgPeer -Name new1 | Out-String
            $text | Should -Match 'Name\s+PublicKey\s+AllowedIPs\s+Endpoint\s+Handshake\s+Transfer'
            $text | Should -Match ([regex]::Escape($peers[2].PublicKey.Substring(0, 8) + [char]0x2026))
            $text | Should -Not -Match ([regex]::Escape($peers[2].PublicKey))
        }
    }

    Describe '-Server resolution' {
        It 'errors clearly when no server runs' {
            { Get-WgPeer } | Should -Throw -ErrorId 'NoWgServer*'
        }

        It 'needs -Server when several run; accepts a name or a WgServer object' {
            $a = Start-WgServer -Name a -ListenPort 0 -Address 10.70.0.1/24
            $null = Start-WgServer -Name b -ListenPort 0 -Address 10.71.0.1/24
            { Add-WgPeer -PublicKey (New-WgKey).PublicKey } | Should -Throw -ErrorId 'WgServerAmbiguous*' -ExpectedMessage '*-Server*'
            (Add-WgPeer -PublicKey (New-WgKey).PublicKey -Server b).AllowedIPs | Should -Be @('10.71.0.2/32')
            (Add-WgPeer -PublicKey (New-WgKey).PublicKey -Server $a).AllowedIPs | Should -Be @('10.70.0.2/32')
            (Get-WgPeer -Server a).Count | Should -Be 1
            Add-WgPeer -PublicKey (New-WgKey).PublicKey -Server nope -ErrorVariable ev -ErrorAction SilentlyContinue
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'WgServerNotFound,*'
        }

        It 'takes the server from a piped WgServer when several run (Get-WgServer x | Get-WgPeer, Export, Add, New-WgClient)' {
            $null = Start-WgServer -Name a -ListenPort 0 -Address 10.74.0.1/24
            $null = Start-WgServer -Name b -ListenPort 0 -Address 10.75.0.1/24
            $pa = Add-WgPeer -Server a -PublicKey (New-WgKey).PublicKey -Name pa
            $pb = Add-WgPeer -Server b -PublicKey (New-WgKey).PublicKey -Name pb
            (Get-WgServer a | Get-WgPeer).PublicKey | Should -Be @($pa.PublicKey)
            (Get-WgServer b | Get-WgPeer -Name pb).PublicKey | Should -Be @($pb.PublicKey)
            (Get-WgServer b | Export-WgConfig) | Should -Match ([regex]::Escape($pb.PublicKey))
            (Get-WgServer b | Export-WgConfig) | Should -Not -Match ([regex]::Escape($pa.PublicKey))
            $new = Get-WgServer a | Add-WgPeer -PublicKey (New-WgKey).PublicKey
            $new.Server | Should -Be 'a'
            $new.Name | Should -BeNullOrEmpty -Because "the server's name is not the peer's"
            $new.AllowedIPs | Should -Be @('10.74.0.3/32')
            (Get-WgServer a | New-WgClient -Name c1 -Endpoint 192.0.2.1).Server | Should -Be 'a'
            # A server object is not a peer: its own PublicKey never stands in for -PublicKey.
            Get-WgServer a | Add-WgPeer -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PeerKeyMissing,*'
            Get-WgServer a | Remove-WgPeer -ErrorVariable ev2 -ErrorAction SilentlyContinue
            $ev2[0].FullyQualifiedErrorId | Should -BeLike 'PeerKeyMissing,*'
            (Get-WgPeer -Server a).Count | Should -Be 3
        }

        It 'refuses a -InputObject that is not a WgServer, and still takes piped keys past it' {
            $null = Start-WgServer -Name a -ListenPort 0 -Address 10.74.0.1/24
            $k = (New-WgKey).PublicKey
            Add-WgPeer -InputObject 'a' -PublicKey $k -ErrorVariable ev -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'InputObjectNotAServer,*'
            @(Get-WgPeer -Server a) | Should -HaveCount 0
            # Keys piped as strings bind to -PublicKey though -InputObject takes any record from the pipeline.
            $keys = @(1..3 | ForEach-Object { (New-WgKey).PublicKey })
            $keys | ForEach-Object { Add-WgPeer -Server a -PublicKey $_ } | Out-Null
            $keys | Disable-WgPeer -Server a
            @(Get-WgPeer -Server a | Where-Object Enabled) | Should -HaveCount 0
            $keys | Remove-WgPeer -Server a
            @(Get-WgPeer -Server a) | Should -HaveCount 0
        }

        It 'binds Server by property name when piping peers' {
            $null = Start-WgServer -Name a -ListenPort 0 -Address 10.72.0.1/24
            $null = Start-WgServer -Name b -ListenPort 0 -Address 10.73.0.1/24
            $null = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name x -Server a
            $null = Add-WgPeer -PublicKey (New-WgKey).PublicKey -Name x -Server b
            Get-WgPeer -Server a | Remove-WgPeer
            (Get-WgPeer -Server a) | Should -BeNullOrEmpty
            (Get-WgPeer -Server b).Count | Should -Be 1
        }
    }
}
