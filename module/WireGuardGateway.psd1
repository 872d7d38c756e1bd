@{
    RootModule           = 'bin/WgPowerShell.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0f6a9e-3c1d-4d57-9a43-2f7f6e0b8c21'
    Author               = 'WireGuardGateway contributors'
    Description          = 'A WireGuard gateway in PowerShell: a userspace WireGuard engine in C#, driven by cmdlets.'
    PowerShellVersion    = '7.6'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('WireGuardGateway.format.ps1xml')
    CmdletsToExport      = @(
        'New-WgKey', 'New-WgPresharedKey', 'Get-WgPublicKey',
        'Start-WgServer', 'Stop-WgServer', 'Get-WgServer', 'Wait-WgServer',
        'Add-WgPeer', 'Remove-WgPeer', 'Get-WgPeer', 'Set-WgPeer',
        'New-WgClient', 'ConvertTo-WgQRCode', 'Set-WgServer',
        'Disable-WgPeer', 'Enable-WgPeer', 'Export-WgConfig', 'Import-WgConfig',
        'Get-WgTag', 'Set-WgTag'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{ PSData = @{ Tags = @('WireGuard', 'VPN', 'Gateway') } }
}
