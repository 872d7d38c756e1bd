#!/usr/bin/env pwsh
<#
.SYNOPSIS
  Builds the module's help: docs/cmdlets/*.md into MAML (module/en-US/WgPowerShell.dll-Help.xml) and
  docs/about_*.md into about_*.help.txt, with syntax, types, positions, pipeline input and aliases
  taken from the built cmdlets themselves (Get-Command), so they never drift from the code.
.DESCRIPTION
  Run by `./build.ps1 Build` after the publish, in its own pwsh (it imports the module). A markdown
  file whose cmdlet is not exported, or a documented parameter the cmdlet lacks, is skipped with a
  warning (tests/Pester/Help.Tests.ps1 turns both into failures). Markdown format: HelpMarkdown.psm1.
.EXAMPLE
  pwsh -NoProfile -File tools/HelpBuilder/Build-Help.ps1
#>
param(
    [string] $Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path,
    [string] $Culture = 'en-US'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3
Import-Module (Join-Path $PSScriptRoot 'HelpMarkdown.psm1') -Force

$manifest = Join-Path $Root 'module/WireGuardGateway.psd1'
$module = Import-Module $manifest -Force -PassThru
$outDir = Join-Path $Root "module/$Culture"
New-Item -ItemType Directory -Force $outDir | Out-Null

$ns = @{
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
}
# Parameters every cmdlet has: described by PowerShell's about_CommonParameters, not here.
$common = [System.Collections.Generic.HashSet[string]]::new([System.Management.Automation.Cmdlet]::CommonParameters, [StringComparer]::OrdinalIgnoreCase)
$standard = @{
    WhatIf  = 'Shows what would happen if the cmdlet runs. The cmdlet is not run.'
    Confirm = 'Prompts you for confirmation before running the cmdlet.'
}

function Write-Paras([System.Xml.XmlWriter] $w, [string[]] $Paras) {
    foreach ($p in $Paras) { $w.WriteElementString('para', $ns.maml, $p) }
    if (-not $Paras) { $w.WriteElementString('para', $ns.maml, '') }
}

function Write-Description([System.Xml.XmlWriter] $w, [string[]] $Paras) {
    $w.WriteStartElement('maml', 'description', $ns.maml); Write-Paras $w $Paras; $w.WriteEndElement()
}

function Get-TypeLabel([type] $t) {
    if ($t.IsArray) { return (Get-TypeLabel $t.GetElementType()) + '[]' }
    if ($t.IsGenericType -and $t.GetGenericTypeDefinition() -eq [Nullable`1]) { return Get-TypeLabel $t.GetGenericArguments()[0] }
    return $t.Name
}

# The values a parameter accepts when they form a closed set (ValidateSet or an enum), else $null.
function Get-AllowedValues($p) {
    $set = $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] } | Select-Object -First 1
    if ($set) { return , @($set.ValidValues) }
    $t = $p.ParameterType
    if ($t.IsGenericType -and $t.GetGenericTypeDefinition() -eq [Nullable`1]) { $t = $t.GetGenericArguments()[0] }
    if ($t.IsEnum) { return , [string[]][Enum]::GetNames($t) }
    return $null
}

# One <command:parameter>: metadata from the cmdlet ($p, a CommandParameterInfo), text from markdown.
function Write-Parameter([System.Xml.XmlWriter] $w, $p, $doc, [bool] $InSyntax) {
    $isSwitch = $p.ParameterType -eq [System.Management.Automation.SwitchParameter]
    $pipeline = @(if ($p.ValueFromPipeline) { 'ByValue' }; if ($p.ValueFromPipelineByPropertyName) { 'ByPropertyName' })
    $w.WriteStartElement('command', 'parameter', $ns.command)
    $w.WriteAttributeString('required', ([string]$p.IsMandatory).ToLowerInvariant())
    $w.WriteAttributeString('variableLength', ([string]$p.ParameterType.IsArray).ToLowerInvariant())
    $wild = [bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
    $w.WriteAttributeString('globbing', ([string]$wild).ToLowerInvariant())
    $w.WriteAttributeString('pipelineInput', $(if ($pipeline) { "True ($($pipeline -join ', '))" } else { 'False' }))
    $w.WriteAttributeString('position', $(if ($p.Position -ge 0) { [string]$p.Position } else { 'named' }))
    $w.WriteAttributeString('aliases', $(if ($p.Aliases.Count) { $p.Aliases -join ', ' } else { 'none' }))
    $w.WriteElementString('name', $ns.maml, $p.Name)
    $text = if ($doc) { $doc.Description } elseif ($standard.ContainsKey($p.Name)) { , @($standard[$p.Name]) } else { , @() }
    Write-Description $w $text
    $values = Get-AllowedValues $p
    if ($InSyntax -and $values) {
        $w.WriteStartElement('command', 'parameterValueGroup', $ns.command)
        foreach ($v in $values) {
            $w.WriteStartElement('command', 'parameterValue', $ns.command)
            $w.WriteAttributeString('required', 'false'); $w.WriteAttributeString('variableLength', 'false')
            $w.WriteString($v); $w.WriteEndElement()
        }
        $w.WriteEndElement()
    }
    elseif (-not $isSwitch) {
        $w.WriteStartElement('command', 'parameterValue', $ns.command)
        $w.WriteAttributeString('required', 'true'); $w.WriteAttributeString('variableLength', 'false')
        $w.WriteString((Get-TypeLabel $p.ParameterType)); $w.WriteEndElement()
    }
    $w.WriteStartElement('dev', 'type', $ns.dev)
    $w.WriteElementString('name', $ns.maml, (Get-TypeLabel $p.ParameterType)); $w.WriteElementString('uri', $ns.maml, '')
    $w.WriteEndElement()
    $default = if ($doc -and $doc.DefaultValue) { $doc.DefaultValue } elseif ($isSwitch) { 'False' } else { 'None' }
    $w.WriteElementString('defaultValue', $ns.dev, $default)
    $w.WriteEndElement()
}

function Write-TypeList([System.Xml.XmlWriter] $w, [string] $Outer, [string] $Inner, $Items) {
    $w.WriteStartElement('command', $Outer, $ns.command)
    foreach ($i in $Items) {
        $w.WriteStartElement('command', $Inner, $ns.command)
        $w.WriteStartElement('dev', 'type', $ns.dev)
        $w.WriteElementString('name', $ns.maml, $i.Type); $w.WriteElementString('uri', $ns.maml, '')
        $w.WriteEndElement()
        Write-Description $w $i.Description
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
}

function Write-Command([System.Xml.XmlWriter] $w, $cmd, $doc) {
    $docParams = @{}
    foreach ($dp in $doc.Parameters) {
        if ($cmd.Parameters.ContainsKey($dp.Name)) { $docParams[$dp.Name] = $dp }
        else { Write-Warning "$(Split-Path -Leaf $doc.Path): -$($dp.Name) is documented but $($cmd.Name) has no such parameter: skipped." }
    }
    $w.WriteStartElement('command', 'command', $ns.command)
    $w.WriteAttributeString('xmlns', 'maml', $null, $ns.maml)
    $w.WriteAttributeString('xmlns', 'dev', $null, $ns.dev)

    $w.WriteStartElement('command', 'details', $ns.command)
    $w.WriteElementString('name', $ns.command, $cmd.Name)
    $w.WriteElementString('verb', $ns.command, $cmd.Verb)
    $w.WriteElementString('noun', $ns.command, $cmd.Noun)
    Write-Description $w @($doc.Synopsis)
    $w.WriteEndElement()
    Write-Description $w $doc.Description

    $w.WriteStartElement('command', 'syntax', $ns.command)
    foreach ($set in $cmd.ParameterSets) {
        $w.WriteStartElement('command', 'syntaxItem', $ns.command)
        $w.WriteElementString('name', $ns.maml, $cmd.Name)
        # Positional parameters first (in position order), then the named ones in declaration order.
        $ps = @($set.Parameters | Where-Object { -not $common.Contains($_.Name) })
        $ordered = @($ps | Where-Object Position -ge 0 | Sort-Object Position) + @($ps | Where-Object Position -lt 0)
        foreach ($p in $ordered) { Write-Parameter $w $p $docParams[$p.Name] $true }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'parameters', $ns.command)
    $seen = [System.Collections.Generic.HashSet[string]]::new()
    foreach ($set in $cmd.ParameterSets) {
        foreach ($p in $set.Parameters) {
            if ($common.Contains($p.Name) -or -not $seen.Add($p.Name)) { continue }
            Write-Parameter $w $p $docParams[$p.Name] $false
        }
    }
    $w.WriteEndElement()

    Write-TypeList $w 'inputTypes' 'inputType' $doc.Inputs
    Write-TypeList $w 'returnValues' 'returnValue' $doc.Outputs

    $w.WriteStartElement('maml', 'alertSet', $ns.maml)
    $w.WriteStartElement('maml', 'alert', $ns.maml); Write-Paras $w $doc.Notes; $w.WriteEndElement()
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'examples', $ns.command)
    foreach ($e in $doc.Examples) {
        $w.WriteStartElement('command', 'example', $ns.command)
        $w.WriteElementString('title', $ns.maml, "---------- $($e.Title) ----------")
        $w.WriteElementString('code', $ns.dev, $e.Code)
        # A trailing empty paragraph separates the remarks from the next example's title.
        $w.WriteStartElement('dev', 'remarks', $ns.dev); Write-Paras $w (@($e.Remarks) + ''); $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'relatedLinks', $ns.command)
    foreach ($l in $doc.Links) {
        $w.WriteStartElement('maml', 'navigationLink', $ns.maml)
        $w.WriteElementString('linkText', $ns.maml, $l.Text); $w.WriteElementString('uri', $ns.maml, $l.Uri)
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteEndElement()
}

# The MAML file is named after the assembly that defines the cmdlets (HelpFile of each cmdlet).
$cmdlets = @(Get-Command -Module $module.Name -CommandType Cmdlet)
$helpFile = ($cmdlets | Select-Object -First 1).HelpFile
$mamlPath = Join-Path $outDir $helpFile
$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [System.Text.UTF8Encoding]::new($false) }
$w = [System.Xml.XmlWriter]::Create($mamlPath, $settings)
$written = 0
try {
    $w.WriteStartDocument()
    $w.WriteStartElement('helpItems', 'http://msh')
    $w.WriteAttributeString('schema', 'maml')
    foreach ($file in Get-ChildItem (Join-Path $Root 'docs/cmdlets') -Filter *.md | Sort-Object Name) {
        $doc = Read-CmdletHelpMarkdown $file.FullName
        $cmd = $cmdlets | Where-Object Name -eq $file.BaseName
        if (-not $cmd) { Write-Warning "$($file.Name): $($file.BaseName) is not a cmdlet of this build: skipped."; continue }
        if ($doc.Name -ne $cmd.Name) { throw "$($file.Name): the title '# $($doc.Name)' must be the cmdlet's name." }
        Write-Command $w $cmd $doc
        $written++
    }
    $w.WriteEndElement()
    $w.WriteEndDocument()
}
finally { $w.Dispose() }

foreach ($about in Get-ChildItem (Join-Path $Root 'docs') -Filter 'about_*.md') {
    $target = Join-Path $outDir ($about.BaseName + '.help.txt')
    [System.IO.File]::WriteAllText($target, (ConvertTo-AboutHelpText $about.FullName))
}
Write-Host "Help: $written cmdlets into $mamlPath"
