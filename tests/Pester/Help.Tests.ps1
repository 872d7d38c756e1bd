# The built help (module/en-US, made by ./build.ps1 Build from docs/cmdlets/*.md) against the exported
# cmdlets: every cmdlet and parameter described, at least two examples that parse, and no markdown for
# cmdlets or parameters that do not exist.

BeforeDiscovery {
    $root = Resolve-Path (Join-Path $PSScriptRoot '../..')
    Import-Module (Join-Path $root 'module/WireGuardGateway.psd1') -Force
    $script:cmdletNames = @((Get-Module WireGuardGateway).ExportedCmdlets.Keys | Sort-Object)
    $script:mdFiles = @(Get-ChildItem (Join-Path $root 'docs/cmdlets') -Filter *.md | Sort-Object Name |
        ForEach-Object { @{ Name = $_.BaseName; Path = $_.FullName } })
}

BeforeAll {
    $root = Resolve-Path (Join-Path $PSScriptRoot '../..')
    Import-Module (Join-Path $root 'module/WireGuardGateway.psd1') -Force
    Import-Module (Join-Path $root 'tools/HelpBuilder/HelpMarkdown.psm1') -Force
    $script:exported = @((Get-Module WireGuardGateway).ExportedCmdlets.Keys)
    $script:common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters

    function Get-Text($node) { (@($node) | ForEach-Object { $_.Text }) -join "`n" }
}

Describe 'Help of <_>' -ForEach $cmdletNames {
    BeforeAll {
        $script:name = $_
        $script:help = Get-Help $name -Full
        $script:cmd = Get-Command $name
    }

    It 'comes from the MAML file with a synopsis and a description' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        # Without MAML, PowerShell makes up a synopsis from the syntax and has no description.
        $help.Synopsis | Should -Not -Match ([regex]::Escape("$name ["))
        Get-Text $help.description | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter' {
        $missing = foreach ($p in $cmd.Parameters.Keys) {
            if ($p -in $common) { continue }
            $entry = @($help.parameters.parameter) | Where-Object { $_.name -eq $p }
            if (-not $entry -or -not (Get-Text $entry.description).Trim()) { $p }
        }
        $missing | Should -BeNullOrEmpty -Because 'each parameter needs a description in docs/cmdlets'
    }

    It 'has at least two examples' {
        @($help.examples.example).Count | Should -BeGreaterOrEqual 2
    }

    It 'has examples whose code parses and that are explained' {
        foreach ($e in @($help.examples.example)) {
            $e.code | Should -Not -BeNullOrEmpty -Because $e.title
            $errors = $null
            [System.Management.Automation.Language.Parser]::ParseInput($e.code, [ref]$null, [ref]$errors) | Out-Null
            $errors | Should -BeNullOrEmpty -Because "the code of '$($e.title.Trim(' -'))' must parse"
            (Get-Text $e.remarks).Trim() | Should -Not -BeNullOrEmpty -Because "'$($e.title.Trim(' -'))' needs a sentence of explanation"
        }
    }

    It 'uses the cmdlet in at least one example' {
        (@($help.examples.example).code -join "`n") | Should -Match ([regex]::Escape($name))
    }

    It 'has a markdown source' {
        Join-Path $PSScriptRoot "../../docs/cmdlets/$name.md" | Should -Exist
    }
}

Describe 'Markdown source <Name>.md' -ForEach $mdFiles {
    BeforeAll { $script:doc = Read-CmdletHelpMarkdown $Path }

    It 'belongs to an exported cmdlet' {
        $Name | Should -BeIn $exported -Because 'docs/cmdlets holds one file per exported cmdlet and nothing stale'
    }

    It 'is titled with its cmdlet name' {
        $doc.Name | Should -BeExactly $Name
    }

    It 'documents only parameters the cmdlet has' {
        $cmd = Get-Command $Name -ErrorAction SilentlyContinue
        if (-not $cmd) { throw "$Name is not a command of this module." }
        $stale = @($doc.Parameters | Where-Object { -not $cmd.Parameters.ContainsKey($_.Name) } | ForEach-Object Name)
        $stale | Should -BeNullOrEmpty
    }

    It 'has one powershell code block per example' {
        @($doc.Examples).Count | Should -BeGreaterOrEqual 2
        foreach ($e in $doc.Examples) { $e.Blocks | Should -Be 1 -Because $e.Title }
    }

    It 'has outputs and related links' {
        @($doc.Outputs).Count | Should -BeGreaterOrEqual 1
        @($doc.Links).Count | Should -BeGreaterOrEqual 1
    }
}

Describe 'about_WireGuardGateway' {
    It 'is found by Get-Help and covers the concepts' {
        $text = Get-Help about_WireGuardGateway | Out-String
        foreach ($section in 'SESSION MODEL', 'BACKENDS', 'EGRESS', 'PERSISTENCE', 'SECURITY OF KEYS', 'TROUBLESHOOTING') {
            $text | Should -Match $section
        }
        $text | Should -Match 'wg show'
    }
}

Describe 'Help markdown reader' {
    # The reader that both the converter and the checks above rely on, on a file made here.
    BeforeAll {
        $script:tmp = Join-Path ([System.IO.Path]::GetTempPath()) "wg-help-$([guid]::NewGuid().ToString('N')).md"
        @'
# Test-Thing

## SYNOPSIS
One line
that continues.

## EXAMPLES

### Example 1: First
```powershell
Get-Thing |
  Select-Object -First 1
```
Explains it.

## PARAMETERS

### -Size
The size.
- item one
- item two

Default value: 42

### -Other
Text with a [link](Other.md) and **bold**.

## OUTPUTS

### System.String
A string.

## RELATED LINKS
- [Get-Thing](Get-Thing.md)
- <https://example.org/x>
- about_Thing
'@ | Set-Content -Path $tmp
        $script:doc = Read-CmdletHelpMarkdown $tmp
    }
    AfterAll { Remove-Item $tmp -ErrorAction SilentlyContinue }

    It 'reads title, synopsis and examples' {
        $doc.Name | Should -Be 'Test-Thing'
        $doc.Synopsis | Should -Be 'One line that continues.'
        $doc.Examples.Count | Should -Be 1
        $doc.Examples[0].Title | Should -Be 'Example 1: First'
        $doc.Examples[0].Code | Should -Be "Get-Thing |`n  Select-Object -First 1"
        $doc.Examples[0].Remarks | Should -Be @('Explains it.')
    }

    It 'reads parameters with list items, default values and plain text' {
        $doc.Parameters.Name | Should -Be @('Size', 'Other')
        $doc.Parameters[0].Description | Should -Be @('The size.', '- item one', '- item two')
        $doc.Parameters[0].DefaultValue | Should -Be '42'
        $doc.Parameters[1].Description | Should -Be @('Text with a link and bold.')
    }

    It 'reads outputs and links' {
        $doc.Outputs[0].Type | Should -Be 'System.String'
        $doc.Links.Text | Should -Be @('Get-Thing', 'https://example.org/x', 'about_Thing')
        $doc.Links[1].Uri | Should -Be 'https://example.org/x'
    }
}
