# Helpers shared by the Pester suites: import with
#   Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force

# Polls a condition until it holds or the time is up; returns whether it held (never sleeps blindly).
function Wait-Until([scriptblock] $Condition, [int] $Seconds = 20) {
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { return $false }
        Start-Sleep -Milliseconds 20
    }
    return $true
}

# One get=1 over a UAPI socket; returns the whole answer text.
function Get-UapiText([string] $Path) {
    $s = [System.Net.Sockets.Socket]::new('Unix', 'Stream', 'Unspecified')
    try {
        $s.Connect([System.Net.Sockets.UnixDomainSocketEndPoint]::new($Path))
        [void]$s.Send([System.Text.Encoding]::ASCII.GetBytes("get=1`n`n"))
        $s.ReceiveTimeout = 5000
        $sb = [System.Text.StringBuilder]::new(); $buf = [byte[]]::new(4096)
        while (-not $sb.ToString().EndsWith("`n`n")) {
            $n = $s.Receive($buf); if ($n -le 0) { break }
            [void]$sb.Append([System.Text.Encoding]::ASCII.GetString($buf, 0, $n))
        }
        $sb.ToString()
    } finally { $s.Dispose() }
}

# The UAPI writes keys in hex.
function ConvertTo-Hex([string] $Base64) { [Convert]::ToHexStringLower([Convert]::FromBase64String($Base64)) }

function Get-WgEngineServer($Server) {
    <# The engine's VPNServer behind a WgServer (an internal property: tests look at engine state through it). #>
    $Server.GetType().GetProperty('Server', [System.Reflection.BindingFlags]'NonPublic,Instance').GetValue($Server)
}

Export-ModuleMember -Function Wait-Until, Get-UapiText, ConvertTo-Hex, Get-WgEngineServer
