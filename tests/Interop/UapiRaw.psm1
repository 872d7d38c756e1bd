# Raw UAPI exchanges for the interop suites: write bytes to a unix socket exactly as given and read
# what comes back, so malformed requests can be sent to our gateway and to wireguard-go alike.

function Send-UapiRaw {
    <#
      Connects to -Path, writes -Request (ASCII, sent as is), optionally half-closes (-HalfClose: the
      client signals end of input), then reads until an answer ends ("errno=N" + blank line), the
      server closes, or -TimeoutMs passes. Returns Text, Errno ($null when none), Closed, TimedOut.
    #>
    param(
        [Parameter(Mandatory)][string]$Path,
        [AllowEmptyString()][string]$Request = '',
        [switch]$HalfClose,
        [int]$TimeoutMs = 3000
    )
    $s = [System.Net.Sockets.Socket]::new('Unix', 'Stream', 'Unspecified')
    try {
        $s.Connect([System.Net.Sockets.UnixDomainSocketEndPoint]::new($Path))
        if ($Request.Length -gt 0) { [void]$s.Send([System.Text.Encoding]::ASCII.GetBytes($Request)) }
        if ($HalfClose) { $s.Shutdown('Send') }
        Read-UapiAnswer -Socket $s -TimeoutMs $TimeoutMs
    } finally { $s.Dispose() }
}

function Read-UapiAnswer {
    <# Reads one answer from a connected socket (see Send-UapiRaw). #>
    param([Parameter(Mandatory)]$Socket, [int]$TimeoutMs = 3000)
    $text = [System.Text.StringBuilder]::new()
    $buf = [byte[]]::new(65536)
    $deadline = [DateTime]::UtcNow.AddMilliseconds($TimeoutMs)
    $closed = $false; $timedOut = $false
    while ($true) {
        $left = ($deadline - [DateTime]::UtcNow).TotalMilliseconds
        if ($left -le 0) { $timedOut = $true; break }
        if (-not $Socket.Poll([int]([Math]::Min($left, 200) * 1000), 'SelectRead')) { continue }
        try { $n = $Socket.Receive($buf) } catch [System.Net.Sockets.SocketException] { $n = 0 }
        if ($n -le 0) { $closed = $true; break }
        [void]$text.Append([System.Text.Encoding]::ASCII.GetString($buf, 0, $n))
        if ($text.ToString() -match "(^|\n)errno=-?\d+\n\n$") { break }
    }
    $t = $text.ToString()
    $errno = if ($t -match "(?:^|\n)errno=(-?\d+)\n\n$") { [int]$Matches[1] } else { $null }
    [pscustomobject]@{ Text = $t; Errno = $errno; Closed = $closed; TimedOut = $timedOut }
}

Export-ModuleMember -Function Send-UapiRaw, Read-UapiAnswer
