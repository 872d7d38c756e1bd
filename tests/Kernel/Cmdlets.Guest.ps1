# Runs inside the qemu guest (tests/Kernel/run-guest.sh): the cmdlets over the real kernel module.
# Plain checks rather than Pester (loading Pester under emulation costs more than these tests).
# Writes PASS/FAIL lines and "N passed, N failed" to the file given; build.ps1 adds them to the suite.
param([Parameter(Mandatory)] [string] $Manifest, [Parameter(Mandatory)] [string] $ResultsPath)
$ErrorActionPreference = 'Stop'
$lines = [System.Collections.Generic.List[string]]::new()
$passed = 0; $failed = 0
function Test-Step([string] $Name, [scriptblock] $Body) {
    try { & $Body; $script:passed++; $lines.Add("PASS $Name") }
    catch { $script:failed++; $lines.Add("FAIL ${Name}: $($_.Exception.Message) [$($_.InvocationInfo.PositionMessage -replace '\s+', ' ')]") }
    Write-Host $lines[-1]
}
function Assert-That([bool] $Condition, [string] $What) { if (-not $Condition) { throw $What } }

Import-Module $Manifest
$ifName = "wgkp$((Get-Random -Maximum 99999))"
Test-Step 'Start-WgServer -Backend Kernel creates the link; Add/Get/Disable/Enable/Remove-WgPeer reach the kernel; Stop deletes it' {
    $s = Start-WgServer -Name $ifName -Backend Kernel -Address 10.77.0.1/24 -ListenPort 0 -MTU 1400
    try {
        Assert-That ($s.Backend -eq 'Kernel') "Backend is $($s.Backend)"
        Assert-That ($s.Egress -eq 'None') "Egress is $($s.Egress) (the kernel routes)"
        Assert-That ($null -eq $s.UapiPath) 'no UAPI socket served'
        Assert-That ((Get-Content "/sys/class/net/$ifName/mtu") -eq '1400') 'MTU on the link'
        Assert-That ((wg show $ifName listen-port) -eq "$($s.ListenPort)") "wg show reports port $($s.ListenPort)"
        $key = (New-WgKey).PublicKey
        $p = Add-WgPeer -Server $ifName -PublicKey $key -Name phone
        Assert-That ("$($p.AllowedIPs)" -eq '10.77.0.2/32') "pool address $($p.AllowedIPs)"
        Assert-That ((wg show $ifName allowed-ips) -match [regex]::Escape("$key`t10.77.0.2/32")) 'the kernel has the peer and its address'
        $got = Get-WgPeer -Server $ifName -Name phone
        Assert-That ($got.PublicKey -eq $key -and $null -eq $got.LatestHandshake) 'Get-WgPeer from the kernel'
        Disable-WgPeer -Server $ifName -Name phone
        Assert-That (-not (wg show $ifName peers)) 'disabled peer left the kernel'
        Enable-WgPeer -Server $ifName -Name phone
        Assert-That ((wg show $ifName peers) -eq $key) 'enabled peer back in the kernel'
        $err = $null
        Set-WgPeer -Server $ifName -PublicKey $key -Tag office -ErrorVariable err -ErrorAction SilentlyContinue | Out-Null
        Assert-That ("$($err[0].FullyQualifiedErrorId)" -like 'PolicyNotApplicable*') "tags refused: $($err[0].FullyQualifiedErrorId)"
        Assert-That (-not (Get-WgPeer -Server $ifName -Name phone).Tags) 'the refused tag was not kept'
        Remove-WgPeer -Server $ifName -Name phone -Confirm:$false
        Assert-That (-not (wg show $ifName peers)) 'removed from the kernel'
    }
    finally { Stop-WgServer -Name $ifName }
    Assert-That (-not (Test-Path "/sys/class/net/$ifName")) 'link deleted by Stop-WgServer'
}
$lines.Add("$passed passed, $failed failed")
Set-Content -Path $ResultsPath -Value $lines
