# Reads the help markdown of docs/cmdlets/*.md and docs/about_*.md into plain objects.
# Shared by the converter (Build-Help.ps1) and the tests (tests/Pester/Help.Tests.ps1), so both read
# the sources the same way.
#
# Cmdlet file format (one file per cmdlet, named <Verb-Noun>.md):
#   # Verb-Noun
#   ## SYNOPSIS / ## DESCRIPTION / ## NOTES      paragraphs (blank-line separated, "- " lines are list items)
#   ## EXAMPLES      ### Example N: title, then one ```powershell block, then remarks paragraphs
#   ## PARAMETERS    ### -Name, then paragraphs; an optional line "Default value: X" sets the default
#   ## INPUTS / ## OUTPUTS   ### TypeName, then paragraphs
#   ## RELATED LINKS "- [Get-WgPeer](Get-WgPeer.md)", "- about_WireGuardGateway" or "- <https://...>"
# Type, position, pipeline input, aliases and "required" are not written in markdown: the converter
# takes them from the cmdlet itself, so they cannot drift.

Set-StrictMode -Version 3

# Markdown inline syntax to plain text: [text](url) -> text, **x** -> x. Backticks stay (they read well).
function ConvertTo-PlainText([string] $Text) {
    $t = [regex]::Replace($Text, '\[([^\]]+)\]\(([^)]+)\)', '$1')
    $t = [regex]::Replace($t, '\*\*([^*]+)\*\*', '$1')
    return $t
}

# Lines to paragraphs: blank lines separate, "- " starts a list item, other lines join with a space.
function ConvertTo-Paragraphs([string[]] $Lines) {
    $paras = [System.Collections.Generic.List[string]]::new()
    $current = $null
    foreach ($line in $Lines) {
        $l = $line.Trim()
        if ($l -eq '') {
            if ($null -ne $current) { $paras.Add($current); $current = $null }
        }
        elseif ($l -match '^[-*] ') {
            if ($null -ne $current) { $paras.Add($current) }
            $current = '- ' + $l.Substring(2).Trim()
        }
        elseif ($null -eq $current) { $current = $l }
        else { $current = "$current $l" }
    }
    if ($null -ne $current) { $paras.Add($current) }
    return , @($paras | ForEach-Object { ConvertTo-PlainText $_ })
}

# Splits a file into its ## sections (and their ### subsections), keeping fenced code blocks intact.
function Split-MarkdownSections([string] $Path) {
    $lines = [System.IO.File]::ReadAllLines($Path)
    $title = $null
    $sections = [ordered]@{}
    $section = $null; $sub = $null
    $inFence = $false
    foreach ($line in $lines) {
        if ($line -match '^```') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^# (.+)$' -and $null -eq $title) { $title = $Matches[1].Trim(); continue }
        if (-not $inFence -and $line -match '^## (.+)$') {
            $section = [ordered]@{ Lines = [System.Collections.Generic.List[string]]::new(); Subs = [System.Collections.Generic.List[object]]::new() }
            $sections[$Matches[1].Trim().ToUpperInvariant()] = $section
            $sub = $null
            continue
        }
        if (-not $inFence -and $line -match '^### (.+)$' -and $null -ne $section) {
            $sub = [pscustomobject]@{ Title = $Matches[1].Trim(); Lines = [System.Collections.Generic.List[string]]::new() }
            $section.Subs.Add($sub)
            continue
        }
        if ($null -ne $sub) { $sub.Lines.Add($line) }
        elseif ($null -ne $section) { $section.Lines.Add($line) }
    }
    if ($inFence) { throw "${Path}: a ``````` fence is not closed." }
    return [pscustomobject]@{ Title = $title; Sections = $sections }
}

# The fenced code blocks of some lines, with the info string (language) of each.
function Get-FencedBlocks([string[]] $Lines) {
    $blocks = [System.Collections.Generic.List[object]]::new()
    $code = $null; $lang = $null; $rest = [System.Collections.Generic.List[string]]::new()
    foreach ($line in $Lines) {
        if ($null -eq $code -and $line -match '^```\s*(\S*)') { $code = [System.Collections.Generic.List[string]]::new(); $lang = $Matches[1]; continue }
        if ($null -ne $code -and $line -match '^```\s*$') {
            $blocks.Add([pscustomobject]@{ Language = $lang; Code = ($code -join "`n") }); $code = $null; continue
        }
        if ($null -ne $code) { $code.Add($line) } else { $rest.Add($line) }
    }
    return [pscustomobject]@{ Blocks = $blocks.ToArray(); Text = $rest.ToArray() }
}

function Get-SectionParagraphs($Doc, [string] $Name) {
    if (-not $Doc.Sections.Contains($Name)) { return , @() }
    return ConvertTo-Paragraphs $Doc.Sections[$Name].Lines
}

function Get-SectionSubs($Doc, [string] $Name) {
    if (-not $Doc.Sections.Contains($Name)) { return , @() }
    return , @($Doc.Sections[$Name].Subs)
}

<#
.SYNOPSIS
  Reads one cmdlet's help markdown into an object: Name, Synopsis, Description, Examples (Title, Code,
  Remarks), Parameters (Name, Description, DefaultValue), Inputs/Outputs (Type, Description), Notes, Links.
#>
function Read-CmdletHelpMarkdown([string] $Path) {
    $doc = Split-MarkdownSections $Path
    $examples = foreach ($s in (Get-SectionSubs $doc 'EXAMPLES')) {
        $f = Get-FencedBlocks $s.Lines
        [pscustomobject]@{
            Title   = $s.Title
            Code    = @($f.Blocks | Where-Object Language -eq 'powershell' | ForEach-Object Code) -join "`n"
            Blocks  = $f.Blocks.Count
            Remarks = ConvertTo-Paragraphs $f.Text
        }
    }
    $parameters = foreach ($s in (Get-SectionSubs $doc 'PARAMETERS')) {
        $default = $null
        $text = foreach ($l in $s.Lines) {
            if ($l -match '^\s*Default value:\s*(.+)$') { $default = $Matches[1].Trim() } else { $l }
        }
        [pscustomobject]@{ Name = $s.Title.TrimStart('-'); Description = ConvertTo-Paragraphs $text; DefaultValue = $default }
    }
    $types = {
        param($name)
        foreach ($s in (Get-SectionSubs $doc $name)) {
            [pscustomobject]@{ Type = $s.Title; Description = ConvertTo-Paragraphs $s.Lines }
        }
    }
    $linkLines = if ($doc.Sections.Contains('RELATED LINKS')) { $doc.Sections['RELATED LINKS'].Lines } else { @() }
    $links = foreach ($l in $linkLines) {
        if ($l -match '^\s*[-*]\s+\[([^\]]+)\]\(([^)]*)\)') {
            $uri = if ($Matches[2] -match '^https?://') { $Matches[2] } else { '' }
            [pscustomobject]@{ Text = $Matches[1]; Uri = $uri }
        }
        elseif ($l -match '^\s*[-*]\s+<(https?://[^>]+)>') { [pscustomobject]@{ Text = $Matches[1]; Uri = $Matches[1] } }
        elseif ($l -match '^\s*[-*]\s+(\S.*)$') { [pscustomobject]@{ Text = $Matches[1].Trim(); Uri = '' } }
    }
    [pscustomobject]@{
        Path        = $Path
        Name        = $doc.Title
        Synopsis    = (Get-SectionParagraphs $doc 'SYNOPSIS') -join ' '
        Description = Get-SectionParagraphs $doc 'DESCRIPTION'
        Examples    = @($examples)
        Parameters  = @($parameters)
        Inputs      = @(& $types 'INPUTS')
        Outputs     = @(& $types 'OUTPUTS')
        Notes       = Get-SectionParagraphs $doc 'NOTES'
        Links       = @($links)
    }
}

# Word-wraps a paragraph at $Width columns with an indent (for the about_ text topic).
function Format-Wrapped([string] $Text, [int] $Indent, [int] $Width = 80) {
    $pad = ' ' * $Indent
    $hang = if ($Text.StartsWith('- ')) { $pad + '  ' } else { $pad }
    $out = [System.Text.StringBuilder]::new()
    $line = $pad
    foreach ($word in ($Text -split '\s+' | Where-Object { $_ })) {
        if ($line.Length + $word.Length + 1 -gt $Width -and $line.Trim().Length -gt 0) {
            [void]$out.AppendLine($line.TrimEnd()); $line = $hang
        }
        $line = if ($line.Trim().Length -eq 0) { $line + $word } else { "$line $word" }
    }
    [void]$out.Append($line.TrimEnd())
    return $out.ToString()
}

<#
.SYNOPSIS
  Converts an about_ topic in markdown to the plain text layout of about_*.help.txt: section headings
  in capitals at column 0, paragraphs wrapped and indented 4, code blocks indented 8.
#>
function ConvertTo-AboutHelpText([string] $Path) {
    $lines = [System.IO.File]::ReadAllLines($Path)
    $sb = [System.Text.StringBuilder]::new()
    $para = [System.Collections.Generic.List[string]]::new()
    $inFence = $false
    $flush = {
        foreach ($p in (ConvertTo-Paragraphs $para.ToArray())) { [void]$sb.AppendLine((Format-Wrapped $p 4)); [void]$sb.AppendLine() }
        $para.Clear()
    }
    foreach ($line in $lines) {
        if ($line -match '^```') {
            & $flush
            $inFence = -not $inFence
            if (-not $inFence) { [void]$sb.AppendLine() }
            continue
        }
        if ($inFence) { [void]$sb.AppendLine(('        ' + $line).TrimEnd()); continue }
        if ($line -match '^# (.+)$') { & $flush; [void]$sb.AppendLine('TOPIC'); [void]$sb.AppendLine('    ' + $Matches[1].Trim()); [void]$sb.AppendLine(); continue }
        if ($line -match '^#{2,3} (.+)$') { & $flush; [void]$sb.AppendLine($Matches[1].Trim().ToUpperInvariant()); continue }
        $para.Add($line)
    }
    & $flush
    return $sb.ToString().TrimEnd() + [Environment]::NewLine
}

<#
.SYNOPSIS
  The "## " sections of a markdown file, each with its title and the code of its fenced blocks of one
  language, in document order (for tests that run a document's code, such as the runbook's).
#>
function Get-MarkdownCodeSections([string] $Path, [string] $Language = 'powershell') {
    $sections = [System.Collections.Generic.List[object]]::new()
    $title = $null
    $lines = [System.Collections.Generic.List[string]]::new()
    $inFence = $false
    $flush = {
        if ($null -ne $title) {
            $code = @((Get-FencedBlocks $lines.ToArray()).Blocks | Where-Object Language -eq $Language | ForEach-Object Code)
            $sections.Add([pscustomobject]@{ Title = $title; Code = $code })
        }
        $lines.Clear()
    }
    foreach ($line in [System.IO.File]::ReadAllLines($Path)) {
        if ($line -match '^```') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^## (.+)$') { & $flush; $title = $Matches[1].Trim(); continue }
        $lines.Add($line)
    }
    & $flush
    return $sections.ToArray()
}

Export-ModuleMember -Function Read-CmdletHelpMarkdown, ConvertTo-AboutHelpText, Get-FencedBlocks, ConvertTo-Paragraphs, Get-MarkdownCodeSections
