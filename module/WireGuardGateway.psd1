@{
    RootModule           = 'bin/WgPowerShell.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0f6a9e-3c1d-4d57-9a43-2f7f6e0b8c21'
    Author               = 'WireGuardGateway contributors'
    Copyright            = '(c) 2026 WireGuardGateway contributors. MIT License.'
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
        'Connect-WgServer', 'Disconnect-WgServer', 'Get-WgTag', 'Set-WgTag',
        'New-WgFleet'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    # What the PowerShell Gallery's publishing guidelines ask for; ./build.ps1 Package packs it (tests/Pester/Package.Tests.ps1).
    # ProjectUri/LicenseUri: the project's public repository (LICENSE at its root).
    PrivateData          = @{
        PSData = @{
            Tags         = @('WireGuard', 'VPN', 'Gateway', 'Networking', 'Security', 'PSEdition_Core', 'Linux', 'Windows', 'MacOS')
            LicenseUri   = 'https://github.com/WireGuardGateway/WireGuardGateway/blob/main/LICENSE'
            ProjectUri   = 'https://github.com/WireGuardGateway/WireGuardGateway'
            ReleaseNotes = '0.1.0: first packaged release. A userspace WireGuard engine in C# driven by cmdlets: Start-WgServer, Add-WgPeer, New-WgClient (wg-quick file and QR code), Get-WgPeer and the rest; wg-quick config files kept atomically (mode 0600); the UAPI served for wg(8), or another device driven over its UAPI; userspace egress without privileges, or a TUN device on Linux. Tested against wireguard-go and wg.'
        }
    }
}
