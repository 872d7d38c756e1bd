# Helpers for the gateway host's process-level suites: start the published host (host/bin, from
# ./build.ps1 Build) with its output in a log file, wait for it, talk to its API socket with curl,
# and stop it with a signal. Everything lives in a per-test temp folder with unique names.
Import-Module (Join-Path $PSScriptRoot '../Pester/TestSupport.psm1') -Force -Global

$script:HostDll = [IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../../host/bin/WgHost.dll'))

# Why the host suites cannot run here, or $null. The caller skips visibly (and fails under CI=true).
function Get-HostSkipReason {
    if (-not $IsLinux) { return 'the host tests use unix sockets and signals: Linux only' }
    if (-not (Test-Path $script:HostDll)) { return "the host is not built ($script:HostDll): run ./build.ps1 Build" }
    if (-not (Get-Command curl -ErrorAction SilentlyContinue)) { return 'curl is missing (apt-get install curl)' }
    return $null
}

function New-HostTestDir([string] $Label) {
    $dir = Join-Path ([IO.Path]::GetTempPath()) "wgh$PID-$Label-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    (New-Item -ItemType Directory -Path $dir).FullName
}

# A gateway name unique to this run and short enough for an interface name (15 characters).
function New-HostGatewayName { "wgh$([guid]::NewGuid().ToString('N').Substring(0, 8))" }

<#
  Starts WgHost with -Arguments; its stdout and stderr go to a log file in -Dir. -Environment adds
  variables. -UnderSystemd makes the host's parent look like systemd to it (a parent process whose
  name is "systemd": a symlink to bash, which waits for the host and exits with its code), which with
  NOTIFY_SOCKET is how Microsoft.Extensions.Hosting.Systemd recognises a service. Returns Process (what
  to wait for; its exit code is the host's), Pid (what to signal), Log.
#>
function Start-WgTestHost {
    param([Parameter(Mandatory)][string] $Dir, [string[]] $Arguments = @(), [hashtable] $Environment = @{}, [switch] $UnderSystemd)
    $id = [guid]::NewGuid().ToString('N').Substring(0, 6)
    $log = Join-Path $Dir "host-$id.log"
    $pidFile = Join-Path $Dir "host-$id.pid"
    if ($UnderSystemd) {
        $shell = Join-Path $Dir 'systemd'
        if (-not (Test-Path $shell)) { New-Item -ItemType SymbolicLink -Path $shell -Target (Get-Command bash).Source | Out-Null }
        $psi = [Diagnostics.ProcessStartInfo]::new($shell)
        $script = 'dotnet "$0" "$@" >>"$WGH_LOG" 2>&1 & echo $! >"$WGH_PID"; wait $!'
    } else {
        $psi = [Diagnostics.ProcessStartInfo]::new('bash')
        # exec: the PID we signal is the host itself, not a shell.
        $script = 'echo $$ >"$WGH_PID"; exec dotnet "$0" "$@" >>"$WGH_LOG" 2>&1'
    }
    foreach ($a in @('-c', $script, $script:HostDll) + $Arguments) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.Environment['WGH_LOG'] = $log
    $psi.Environment['WGH_PID'] = $pidFile
    $psi.Environment['DOTNET_NOLOGO'] = '1'
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
    $p = [Diagnostics.Process]::Start($psi)
    Wait-Until { (Test-Path $pidFile) -and (Get-Content -Raw $pidFile).Trim() } -Seconds 10 | Out-Null
    [pscustomobject]@{ Process = $p; Pid = [int](Get-Content -Raw $pidFile).Trim(); Log = $log }
}

function Get-WgTestHostLog($Hosted) { if (Test-Path $Hosted.Log) { Get-Content -Raw $Hosted.Log } else { '' } }

# One request to the API over its unix socket. Returns Status (0 when no HTTP answer), Body, CurlExit.
function Invoke-HostApi {
    param(
        [Parameter(Mandatory)][string] $Socket,
        [string] $Path = '/healthz',
        [string] $Method = 'GET',
        [string] $Body,
        [string[]] $Header = @(),
        [string] $RunAs
    )
    $args = @('-s', '-S', '--max-time', '20', '-o', '-', '-w', "`n%{http_code}", '--unix-socket', $Socket, '-X', $Method)
    foreach ($h in $Header) { $args += @('-H', $h) }
    if ($PSBoundParameters.ContainsKey('Body')) { $args += @('-H', 'Content-Type: application/json', '--data-binary', $Body) }
    $args += "http://wghost$Path"
    $out = if ($RunAs) { & setpriv --reuid=$RunAs --regid=$RunAs --clear-groups curl @args 2>&1 } else { & curl @args 2>&1 }
    $exit = $LASTEXITCODE
    $text = ($out | ForEach-Object { "$_" }) -join "`n"
    $i = $text.LastIndexOf("`n")
    $status = 0
    if ($i -ge 0 -and [int]::TryParse($text.Substring($i + 1), [ref]$status)) { $text = $text.Substring(0, $i) }
    [pscustomobject]@{ Status = $status; Body = $text; CurlExit = $exit }
}

# Waits until /readyz answers 200 (true) or the host exits or the time is up (false).
function Wait-WgTestHostReady($Hosted, [string] $Socket, [int] $Seconds = 60) {
    Wait-Until { $Hosted.Process.HasExited -or ((Test-Path $Socket) -and (Invoke-HostApi -Socket $Socket -Path '/readyz').Status -eq 200) } -Seconds $Seconds | Out-Null
    -not $Hosted.Process.HasExited
}

# Sends a signal (TERM, INT, KILL) and waits for the exit; returns the seconds it took, or -1 when it did not exit in -Seconds.
function Stop-WgTestHost($Hosted, [string] $Signal = 'TERM', [int] $Seconds = 10) {
    if ($Hosted.Process.HasExited) { return 0 }
    $sw = [Diagnostics.Stopwatch]::StartNew()
    & kill "-$Signal" $Hosted.Pid
    if (-not $Hosted.Process.WaitForExit($Seconds * 1000)) { return -1 }
    $Hosted.Process.WaitForExit()
    $sw.Elapsed.TotalSeconds
}

# Kills a host that a failed test left running (AfterEach).
function Remove-WgTestHost($Hosted) {
    if ($Hosted -and -not $Hosted.Process.HasExited) { & kill -KILL $Hosted.Pid 2>$null; $Hosted.Process.WaitForExit(5000) | Out-Null }
}

Export-ModuleMember -Function Get-HostSkipReason, New-HostTestDir, New-HostGatewayName, Start-WgTestHost, Get-WgTestHostLog,
    Invoke-HostApi, Wait-WgTestHostReady, Stop-WgTestHost, Remove-WgTestHost
