# Runs docs/runbook.md: its ```powershell blocks, section by section and in order, in one runspace
# (the module's session is per runspace), against a live gateway on a free port with temporary folders
# in place of the settings of section 1. After each section the checks below look at the result, so
# the runbook and this test cannot drift apart: a section added, renamed or dropped fails the test.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot '../../tools/HelpBuilder/HelpMarkdown.psm1') -Force
    # One test per "## " section, with the powershell blocks under it (Title, Code).
    $script:sectionCases = @(Get-MarkdownCodeSections (Join-Path $PSScriptRoot '../../docs/runbook.md') |
        ForEach-Object { @{ Title = $_.Title; Code = @($_.Code) } })
}

BeforeAll {
    $script:root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    Import-Module (Join-Path $root 'tools/HelpBuilder/HelpMarkdown.psm1') -Force
    $script:sections = @(Get-MarkdownCodeSections (Join-Path $root 'docs/runbook.md'))
    $script:tmp = Join-Path ([System.IO.Path]::GetTempPath()) "wg-runbook-$([guid]::NewGuid().ToString('N').Substring(0, 12))"
    New-Item -ItemType Directory -Path $tmp | Out-Null
    # What section 1 sets, and the values this test uses instead (unique names, a free port).
    $script:settings = [ordered]@{
        modulePath  = Join-Path $root 'module/WireGuardGateway.psd1'
        serverName  = 'rb' + [guid]::NewGuid().ToString('N').Substring(0, 8)
        listenPort  = 0
        configPath  = Join-Path $tmp 'wg0.conf'
        endpoint    = 'vpn.example.com:51820'
        handoverDir = Join-Path $tmp 'handover'
    }
    $script:rs = [runspacefactory]::CreateRunspace()
    $rs.Open()
    # Stop at the first error of a block; a person running the runbook would answer prompts, the test cannot.
    $rs.SessionStateProxy.SetVariable('ErrorActionPreference', 'Stop')
    $rs.SessionStateProxy.SetVariable('ConfirmPreference', 'None')
    $script:failed = $false

    # Runs code in the runbook's runspace (global scope, so variables carry over); returns its output,
    # throws with the errors it wrote.
    function Invoke-Runbook([string] $Code) {
        $ps = [powershell]::Create()
        $ps.Runspace = $rs
        try {
            $out = $ps.AddScript($Code, $false).Invoke()
            if ($ps.Streams.Error.Count) { throw ($ps.Streams.Error | ForEach-Object { $_.ToString() }) -join "`n" }
            return $out
        }
        finally { $ps.Dispose() }
    }
    function Get-RunbookVariable([string] $Name) { $rs.SessionStateProxy.GetVariable($Name) }
    function Get-Peers { @(Invoke-Runbook 'Get-WgPeer -Server $serverName') }
    # The PrivateKey of the [Interface] section of a wg-quick/showconf file.
    function Get-InterfacePrivateKey([string] $Path) {
        $m = Select-String -Path $Path -Pattern '^\s*PrivateKey\s*=\s*(\S+)\s*$' | Select-Object -First 1
        if ($m) { $m.Matches[0].Groups[1].Value }
    }
    function Get-Mode([string] $Path) { (Get-Item -LiteralPath $Path).UnixFileMode }

    # The checks after each section, by title; the runbook must have exactly these sections, in this order.
    $script:checks = [ordered]@{
        '1. Settings' = {
            Get-RunbookVariable 'serverName' | Should -Be $settings.serverName
        }
        '2. Start the gateway with a persistent configuration' = {
            $s = Invoke-Runbook 'Get-WgServer -Name $serverName'
            $s.State | Should -Be 'Running'
            $s.ListenPort | Should -BeGreaterThan 0
            $s.Address | Should -Be @('10.8.0.1/24')
            $s.ConfigPath | Should -Be $settings.configPath
        }
        '3. Onboarding' = {
            $server = Invoke-Runbook 'Get-WgServer -Name $serverName'
            $peers = Get-Peers
            $peers.Name | Sort-Object | Should -Be @('alice-phone', 'bob-laptop', 'contractor-carol')
            $alice = Get-RunbookVariable 'alice'
            $bob = Get-RunbookVariable 'bob'
            # The client configs: their own key pair, the gateway's key and endpoint, the allocated address.
            foreach ($c in $alice, $bob) {
                $c.Config | Should -Match ([regex]::Escape("PublicKey = $($server.PublicKey)"))
                $c.Config | Should -Match ([regex]::Escape("Endpoint = $($settings.endpoint)"))
                $c.Config -match '(?m)^\s*PrivateKey\s*=\s*(\S+)' | Should -BeTrue
                Invoke-Runbook "Get-WgPublicKey -PrivateKey '$($Matches[1])'" | Should -Be $c.PublicKey
                ($peers | Where-Object PublicKey -eq $c.PublicKey).AllowedIPs | Should -Match '^10\.8\.0\.\d+/32$'
            }
            $alice.Config | Should -Match 'DNS\s*=\s*10\.8\.0\.1'
            $alice.Config | Should -Match ([regex]::Escape('0.0.0.0/0'))
            $bob.Config | Should -Match 'AllowedIPs\s*=\s*10\.8\.0\.0/24'
            $bob.Config | Should -Match 'PresharedKey\s*='
            $bob.Config | Should -Match 'PersistentKeepalive\s*=\s*25'
            ($peers | Where-Object Name -eq 'bob-laptop').HasPresharedKey | Should -BeTrue
            # The handover files: a PNG (its signature) and the config file.
            $png = [System.IO.File]::ReadAllBytes((Join-Path $settings.handoverDir 'alice-phone.png'))
            $png[0..3] | Should -Be @(0x89, 0x50, 0x4E, 0x47)
            (Get-Content -Raw (Join-Path $settings.handoverDir 'bob-laptop.conf')).Replace("`r`n", "`n").TrimEnd() |
                Should -Be $bob.Config.Replace("`r`n", "`n").TrimEnd()
            $carol = $peers | Where-Object Name -eq 'contractor-carol'
            $carol.ExpiresAt | Should -BeGreaterThan ([DateTimeOffset]::Now.AddDays(29))
            $carol.ExpiresAt | Should -BeLessThan ([DateTimeOffset]::Now.AddDays(31))
            # The gateway's file: every peer, no client private key, owner-only.
            $file = Get-Content -Raw $settings.configPath
            foreach ($p in $peers) { $file | Should -Match ([regex]::Escape($p.PublicKey)) }
            foreach ($c in $alice, $bob) {
                $null = $c.Config -match '(?m)^\s*PrivateKey\s*=\s*(\S+)'
                $file | Should -Not -Match ([regex]::Escape($Matches[1]))
            }
            Get-Mode $settings.configPath | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
        }
        '4. Rotating the gateway key' = {
            $old = Get-RunbookVariable 'oldPublicKey'
            $server = Invoke-Runbook 'Get-WgServer -Name $serverName'
            $server.PublicKey | Should -Not -Be $old
            (Get-RunbookVariable 'rotated').PublicKey | Should -Be $server.PublicKey
            # The backup holds the old key (a rollback is possible) and only the owner may read it.
            $backup = Get-RunbookVariable 'backup'
            Invoke-Runbook "Get-WgPublicKey -PrivateKey '$(Get-InterfacePrivateKey $backup)'" | Should -Be $old
            Get-Mode $backup | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
            # The persistent file follows the rotation.
            Invoke-Runbook "Get-WgPublicKey -PrivateKey '$(Get-InterfacePrivateKey $settings.configPath)'" | Should -Be $server.PublicKey
            # Peers stay; each has a notice with the old and the new key.
            $peers = Get-Peers
            $peers.Count | Should -Be 3
            foreach ($p in $peers) {
                $notice = Get-Content -Raw (Join-Path $settings.handoverDir "$($p.Name)-rotation.txt")
                $notice | Should -Match ([regex]::Escape("PublicKey = $old"))
                $notice | Should -Match ([regex]::Escape("PublicKey = $($server.PublicKey)"))
            }
        }
        '5. Offboarding: disable first' = {
            $peers = Get-Peers
            ($peers | Where-Object Name -eq 'bob-laptop').Enabled | Should -BeFalse
            ($peers | Where-Object Name -ne 'bob-laptop').Enabled | Should -Be @($true, $true)
            Get-Content -Raw $settings.configPath | Should -Match ([regex]::Escape((Get-RunbookVariable 'bob').PublicKey))
        }
        '6. Restart' = {
            $server = Invoke-Runbook 'Get-WgServer -Name $serverName'
            $server.State | Should -Be 'Running'
            $server.PublicKey | Should -Be (Get-RunbookVariable 'rotated').PublicKey
            $server.Address | Should -Be @('10.8.0.1/24')
            $peers = Get-Peers
            $peers.Name | Sort-Object | Should -Be @('alice-phone', 'bob-laptop', 'contractor-carol')
            ($peers | Where-Object Name -eq 'bob-laptop').Enabled | Should -BeFalse
            ($peers | Where-Object Name -eq 'bob-laptop').HasPresharedKey | Should -BeTrue
            ($peers | Where-Object Name -eq 'contractor-carol').ExpiresAt | Should -BeGreaterThan ([DateTimeOffset]::Now.AddDays(29))
            ($peers | Where-Object Name -eq 'alice-phone').PublicKey | Should -Be (Get-RunbookVariable 'alice').PublicKey
        }
        '7. Offboarding: remove later' = {
            $peers = Get-Peers
            $peers.Name | Sort-Object | Should -Be @('alice-phone', 'contractor-carol')
            Get-Content -Raw $settings.configPath | Should -Not -Match ([regex]::Escape((Get-RunbookVariable 'bob').PublicKey))
            @(Get-ChildItem $settings.handoverDir -Filter 'bob-laptop*').Count | Should -Be 0
        }
    }
}

AfterAll {
    if ($rs) {
        try { Invoke-Runbook 'Get-WgServer | Stop-WgServer' } catch { }
        $rs.Dispose()
    }
    if ($tmp -and (Test-Path $tmp)) { Remove-Item $tmp -Recurse -Force }
}

Describe 'docs/runbook.md' {
    It 'has exactly the sections this test checks, in order' {
        @($sections.Title) | Should -Be @($checks.Keys)
    }

    It 'has code that parses' {
        foreach ($s in $sections) {
            foreach ($code in $s.Code) {
                $errors = $null
                [System.Management.Automation.Language.Parser]::ParseInput($code, [ref]$null, [ref]$errors) | Out-Null
                $errors | Should -BeNullOrEmpty -Because "the code of '$($s.Title)' must parse"
            }
        }
    }

    It 'sets in section 1 exactly the settings the test replaces, and nothing else' {
        $code = @($sections[0].Code) -join "`n"
        $ast = [System.Management.Automation.Language.Parser]::ParseInput($code, [ref]$null, [ref]$null)
        $statements = @($ast.EndBlock.Statements)
        foreach ($st in $statements) {
            $st | Should -BeOfType ([System.Management.Automation.Language.AssignmentStatementAst])
            $st.Left | Should -BeOfType ([System.Management.Automation.Language.VariableExpressionAst])
        }
        @($statements | ForEach-Object { $_.Left.VariablePath.UserPath }) | Should -Be @($settings.Keys)
    }

    It 'section <Title>' -ForEach $sectionCases {
        if ($script:failed) { Set-ItResult -Skipped -Because 'an earlier section failed'; return }
        $script:failed = $true
        if ($Title -eq $sections[0].Title) {
            # Section 1 is replaced by the test's own values (a free port, temporary folders).
            foreach ($k in $settings.Keys) { $rs.SessionStateProxy.SetVariable($k, $settings[$k]) }
        }
        else {
            @($Code).Count | Should -BeGreaterThan 0 -Because 'each section shows its commands'
            foreach ($block in $Code) { Invoke-Runbook $block | Out-Null }
        }
        $checks.Contains($Title) | Should -BeTrue -Because "the test has no checks for the section '$Title'"
        & $checks[$Title]
        $script:failed = $false
    }
}
