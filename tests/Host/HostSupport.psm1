# Helpers for the gateway host's process-level suites: start the published host (host/bin, from
# ./build.ps1 Build) with its output in a log file, wait for it, talk to its API socket with curl,
# and stop it with a signal. Everything lives in a per-test temp folder with unique names.
Import-Module (Join-Path $PSScriptRoot '../Pester/TestSupport.psm1') -Force -Global

$script:HostDll = [IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../../host/bin/WgHost.dll'))

# Why the host suites cannot run here, or $null. The caller skips visibly (and fails under CI=true).
function Get-HostSkipReason {
    if (-not $IsLinux) { return 'the host tests use unix sockets and signals: Linux only' }
    if (-not (Test-Path $script:HostDll)) { return "the host is not built ($script:HostDll): run ./build.ps1 Build" }
    foreach ($tool in 'curl', 'wg') {
        if (-not (Get-Command $tool -CommandType Application -ErrorAction SilentlyContinue)) { return "$tool is missing (apt-get install curl wireguard-tools, as .ci/run does)" }
    }
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
    param([Parameter(Mandatory)][string] $Dir, [string[]] $Arguments = @(), [hashtable] $Environment = @{}, [switch] $UnderSystemd,
        # A network namespace (of the test's own) to run the host in; `ip netns exec` execs, so the PID stays the host's.
        [string] $Namespace)
    $id = [guid]::NewGuid().ToString('N').Substring(0, 6)
    $log = Join-Path $Dir "host-$id.log"
    $pidFile = Join-Path $Dir "host-$id.pid"
    # The host starts with SIGINT and SIGQUIT at their default action, as under systemd or in a terminal. A
    # process that inherits them ignored (anything started with `&` by a shell without job control, which is how
    # a CI runner may start this suite) keeps them ignored, and .NET then never sees SIGINT, so the INT test
    # would fail for a reason that is the runner's and not the host's. `env --default-signal` (coreutils 8.31+)
    # resets them before dotnet starts.
    if ($UnderSystemd) {
        $shell = Join-Path $Dir 'systemd'
        if (-not (Test-Path $shell)) { New-Item -ItemType SymbolicLink -Path $shell -Target (Get-Command bash).Source | Out-Null }
        $psi = [Diagnostics.ProcessStartInfo]::new($shell)
        $script = 'env --default-signal=INT,QUIT dotnet "$0" "$@" >>"$WGH_LOG" 2>&1 & echo $! >"$WGH_PID"; wait $!'
    } else {
        $psi = [Diagnostics.ProcessStartInfo]::new('bash')
        # exec: the PID we signal is the host itself, not a shell.
        $script = 'echo $$ >"$WGH_PID"; exec env --default-signal=INT,QUIT dotnet "$0" "$@" >>"$WGH_LOG" 2>&1'
        if ($Namespace) { $script = 'echo $$ >"$WGH_PID"; exec env --default-signal=INT,QUIT ip netns exec "$WGH_NS" dotnet "$0" "$@" >>"$WGH_LOG" 2>&1' }
    }
    foreach ($a in @('-c', $script, $script:HostDll) + $Arguments) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.Environment['WGH_LOG'] = $log
    $psi.Environment['WGH_PID'] = $pidFile
    if ($Namespace) { $psi.Environment['WGH_NS'] = $Namespace }
    $psi.Environment['DOTNET_NOLOGO'] = '1'
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
    $p = [Diagnostics.Process]::Start($psi)
    # The shell writes the file before it execs: wait for a whole line (it may exist empty for a moment).
    $havePid = Wait-Until { (Test-Path $pidFile) -and "$(Get-Content -Raw $pidFile -ErrorAction SilentlyContinue)" -match '^\d+\s' } -Seconds 10
    if (-not $havePid) {
        # Never leave a host behind that the caller has no handle on.
        if (-not $p.HasExited) { $p.Kill($true); $p.WaitForExit(5000) | Out-Null }
        throw "the host launcher wrote no PID to $pidFile within 10 s"
    }
    [pscustomobject]@{ Process = $p; Pid = [int]"$(Get-Content -Raw $pidFile)".Trim(); Log = $log }
}

function Get-WgTestHostLog($Hosted) { if (Test-Path $Hosted.Log) { Get-Content -Raw $Hosted.Log } else { '' } }

# One request to the API, over its unix socket (-Socket) or HTTPS (-BaseUrl with -CaCert, -Token).
# Returns Status (0 when no HTTP answer), Body, Json (the parsed body when it is JSON), CurlExit.
function Invoke-HostApi {
    param(
        [string] $Socket,
        [string] $Path = '/healthz',
        [string] $Method = 'GET',
        [string] $Body,
        [string] $ContentType = 'application/json',
        [string[]] $Header = @(),
        [string] $RunAs,
        [string] $BaseUrl,
        [string] $CaCert,
        [string] $Token
    )
    $a = @('-s', '-S', '--max-time', '30', '-o', '-', '-w', "`n%{http_code}", '-X', $Method)
    if ($Socket) { $a += @('--unix-socket', $Socket) }
    if ($CaCert) { $a += @('--cacert', $CaCert) }
    if ($Token) { $a += @('-H', "Authorization: Bearer $Token") }
    foreach ($h in $Header) { $a += @('-H', $h) }
    if ($PSBoundParameters.ContainsKey('Body')) {
        $file = [IO.Path]::GetTempFileName()
        [IO.File]::WriteAllText($file, $Body)
        $a += @('-H', "Content-Type: $ContentType", '--data-binary', "@$file")
    }
    $a += if ($BaseUrl) { "$BaseUrl$Path" } else { "http://wghost$Path" }
    try {
        $out = if ($RunAs) { & setpriv --reuid=$RunAs --regid=$RunAs --clear-groups curl @a 2>&1 } else { & curl @a 2>&1 }
    } finally { if ($file) { Remove-Item $file -ErrorAction SilentlyContinue } }
    $exit = $LASTEXITCODE
    $text = ($out | ForEach-Object { "$_" }) -join "`n"
    $i = $text.LastIndexOf("`n")
    $status = 0
    if ($i -ge 0 -and [int]::TryParse($text.Substring($i + 1), [ref]$status)) { $text = $text.Substring(0, $i) }
    $json = $null
    if ($text.Length -gt 0 -and $text[0] -in '{', '[') { try { $json = ConvertFrom-Json $text -NoEnumerate } catch { $json = $null } }
    [pscustomobject]@{ Status = $status; Body = $text; Json = $json; CurlExit = $exit }
}

# A public key as a URL path segment (base64url, as the API accepts).
function ConvertTo-KeySegment([string] $Key) { $Key.TrimEnd('=').Replace('+', '-').Replace('/', '_') }

# A random public key (the API accepts any 32 bytes as one).
function New-TestPublicKey {
    $k = [byte[]]::new(32); [Security.Cryptography.RandomNumberGenerator]::Fill($k)
    [Convert]::ToBase64String($k)
}

# A loopback TCP port that was free a moment ago.
function Get-FreeTcpPort {
    $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
    $l.Start(); $port = $l.LocalEndpoint.Port; $l.Stop(); $port
}

# A self-signed certificate for 127.0.0.1 as PEM files in -Dir; returns CertPath, KeyPath.
function New-TestCertificate([string] $Dir) {
    $ec = [Security.Cryptography.ECDsa]::Create([Security.Cryptography.ECCurve+NamedCurves]::nistP256)
    $req = [Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=127.0.0.1', $ec, 'SHA256')
    $san = [Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder]::new()
    $san.AddIpAddress([ipaddress]'127.0.0.1')
    $req.CertificateExtensions.Add($san.Build())
    $cert = $req.CreateSelfSigned([DateTimeOffset]::UtcNow.AddMinutes(-5), [DateTimeOffset]::UtcNow.AddDays(1))
    $c = Join-Path $Dir 'cert.pem'; $k = Join-Path $Dir 'key.pem'
    Set-Content -Path $c -Value $cert.ExportCertificatePem()
    Set-Content -Path $k -Value $ec.ExportPkcs8PrivateKeyPem()
    [pscustomobject]@{ CertPath = $c; KeyPath = $k }
}

# Runs `WgHost token ...`; returns Out (stdout lines), Err, ExitCode.
function Invoke-HostTokenCommand([string[]] $Arguments) {
    $errFile = [IO.Path]::GetTempFileName()
    try {
        $out = & dotnet $script:HostDll token @Arguments 2>$errFile
        [pscustomobject]@{ Out = @($out); Err = (Get-Content -Raw $errFile); ExitCode = $LASTEXITCODE }
    } finally { Remove-Item $errFile -ErrorAction SilentlyContinue }
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
    Invoke-HostApi, Wait-WgTestHostReady, Stop-WgTestHost, Remove-WgTestHost, ConvertTo-KeySegment, New-TestPublicKey,
    Get-FreeTcpPort, New-TestCertificate, Invoke-HostTokenCommand
