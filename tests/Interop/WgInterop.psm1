# WgInterop: real wireguard-go peers in throw-away network namespaces, for interop tests and benchmarks.
#
# Topology (settled empirically, see docs/interop.md): each wireguard-go process runs in the ROOT
# namespace, so its UDP socket talks to the gateway over 127.0.0.1 only; its TUN interface is moved
# into a namespace this module creates, and every tunnel address lives there. Root-namespace interfaces
# never get test addresses; traffic goes only to loopback or into our own namespaces.
#
# Everything created is recorded on the network object that New-WgTestNetwork returns, and
# Remove-WgTestNetwork undoes all of it (processes killed, namespaces deleted) without throwing.

Set-StrictMode -Version Latest

$script:UapiDir = '/var/run/wireguard'
$script:WgGo = 'wireguard-go'

function Test-WgInteropPrerequisite {
    <# Which of the tools the interop tests need are missing; IsCI says whether a skip must fail. #>
    [CmdletBinding()]
    param()
    $missing = [System.Collections.Generic.List[string]]::new()
    foreach ($tool in 'wireguard-go', 'wg', 'ip', 'ping') {
        if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) { $missing.Add($tool) }
    }
    if ($IsLinux -and (& id -u) -ne '0') { $missing.Add('root (network namespaces and TUN need it)') }
    if (-not $IsLinux) { $missing.Add('Linux') }
    [pscustomobject]@{
        Ok      = $missing.Count -eq 0
        Missing = [string[]]$missing
        IsCI    = $env:CI -eq 'true'
    }
}

function Write-WgInteropSkipBanner {
    <# Says SKIPPED loudly, so a quiet skip is never mistaken for a pass. #>
    param([string]$Suite, [string[]]$Missing)
    $line = '*' * 78
    Write-Host $line -ForegroundColor Yellow
    Write-Host "SKIPPED: interop suite '$Suite' - missing: $($Missing -join ', ')" -ForegroundColor Yellow
    Write-Host 'Install them as .ci/run does (apt-get install wireguard-go wireguard-tools iperf3 iproute2 iputils-ping) and run as root.' -ForegroundColor Yellow
    Write-Host 'Under CI=true this is a failure, not a skip.' -ForegroundColor Yellow
    Write-Host $line -ForegroundColor Yellow
}

function Invoke-WgNative {
    <# Runs a native command, returns its stdout lines; throws with stderr on a non-zero exit. #>
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [string]$InputText,
        [switch]$AllowFailure
    )
    $errFile = [System.IO.Path]::GetTempFileName()
    try {
        if ($PSBoundParameters.ContainsKey('InputText')) {
            $out = $InputText | & $FilePath @ArgumentList 2>$errFile
        } else {
            $out = & $FilePath @ArgumentList 2>$errFile
        }
        $code = $LASTEXITCODE
        if ($code -ne 0 -and -not $AllowFailure) {
            $err = (Get-Content -Raw -LiteralPath $errFile) -as [string]
            throw "'$FilePath $($ArgumentList -join ' ')' exited $code`: $err"
        }
        , [string[]]@($out)
    } finally {
        Remove-Item -LiteralPath $errFile -Force -ErrorAction Ignore
    }
}

function New-WgTestNetwork {
    <#
      Starts a test run: a short unique id (from $PID and a random number) that every namespace and
      interface name carries, and random private tunnel ranges (10.N.0.0/24 and an fdXX ULA /64).
    #>
    [CmdletBinding()]
    param()
    $id = '{0:x4}{1:x2}' -f ($PID % 0x10000), (Get-Random -Maximum 256)
    $octet = Get-Random -Minimum 100 -Maximum 250
    $v6 = 'fd{0:x2}:{1:x4}:{2:x4}' -f (Get-Random -Maximum 256), (Get-Random -Maximum 0x10000), (Get-Random -Maximum 0x10000)
    $tmp = Join-Path ([System.IO.Path]::GetTempPath()) "wginterop-$id"
    New-Item -ItemType Directory -Path $tmp -Force | Out-Null
    [pscustomobject]@{
        PSTypeName = 'WgInterop.TestNetwork'
        RunId      = $id
        V4Prefix   = "10.$octet.0"      # hosts are "$V4Prefix.<n>", network /24
        V6Prefix   = "$v6`:"            # hosts are "$V6Prefix`:<n>" i.e. fdXX:..::n, network /64
        TempDir    = $tmp
        Namespaces = [System.Collections.Generic.List[string]]::new()
        Devices    = [System.Collections.Generic.List[object]]::new()
    }
}

function Get-WgTestAddress {
    <# Host number n of the run's ranges: V4/V6 bare addresses, and CIDR forms on the /24 and /64. #>
    param([Parameter(Mandatory)]$Network, [Parameter(Mandatory)][int]$HostNumber)
    $v4 = "$($Network.V4Prefix).$HostNumber"
    $v6 = "$($Network.V6Prefix):$('{0:x}' -f $HostNumber)"
    [pscustomobject]@{
        V4 = $v4; V6 = $v6
        V4Cidr = "$v4/24"; V6Cidr = "$v6/64"
        V4Host = "$v4/32"; V6Host = "$v6/128"
        V4Net = "$($Network.V4Prefix).0/24"; V6Net = "$($Network.V6Prefix):/64"
    }
}

function New-WgTestNamespace {
    <# Creates namespace wgi<runid><role> with loopback up, and records it for cleanup. #>
    param([Parameter(Mandatory)]$Network, [Parameter(Mandatory)][ValidatePattern('^[a-z0-9]{1,5}$')][string]$Role)
    $name = "wgi$($Network.RunId)$Role"
    Invoke-WgNative ip 'netns', 'add', $name | Out-Null
    $Network.Namespaces.Add($name)
    Invoke-WgNative ip '-n', $name, 'link', 'set', 'lo', 'up' | Out-Null
    $name
}

function Invoke-InNamespace {
    <# Runs a command inside a namespace; returns stdout lines (throws on failure unless -AllowFailure). #>
    param(
        [Parameter(Mandatory)][string]$Namespace,
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [switch]$AllowFailure
    )
    Invoke-WgNative ip (@('netns', 'exec', $Namespace, $FilePath) + $ArgumentList) -AllowFailure:$AllowFailure
}

function Wait-WgCondition {
    <# Polls a condition until it is true or the timeout passes; returns whether it became true. #>
    param(
        [Parameter(Mandatory)][scriptblock]$Condition,
        [double]$TimeoutSeconds = 10,
        [int]$IntervalMilliseconds = 50
    )
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    while ($true) {
        if (& $Condition) { return $true }
        if ($sw.Elapsed.TotalSeconds -ge $TimeoutSeconds) { return $false }
        Start-Sleep -Milliseconds $IntervalMilliseconds
    }
}

function New-WgGoKeyPair {
    <# A key pair from `wg genkey` / `wg pubkey`, so the harness needs nothing from our module. #>
    $priv = (Invoke-WgNative wg 'genkey')[0].Trim()
    $pub = (Invoke-WgNative wg 'pubkey' -InputText $priv)[0].Trim()
    [pscustomobject]@{ PrivateKey = $priv; PublicKey = $pub }
}

function New-WgGoDevice {
    <#
      Starts wireguard-go (foreground, background process, PID tracked) in the root namespace, moves
      its TUN into a new namespace for -Role, sets the key and a free listen port over the UAPI, gives
      the TUN its -Address (CIDR, v4 and/or v6) and brings it up. -Forwarding turns on IPv4/IPv6
      forwarding inside that namespace (for a hub). -InNamespace: wireguard-go runs inside that namespace
      instead (its TUN is made there and its UDP socket lives there too, so the device reaches only what
      the caller connects to the namespace, not the root namespace's loopback). Returns the device object.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]$Network,
        [Parameter(Mandatory)][string]$Role,
        [Parameter(Mandatory)][string]$PrivateKey,
        [Parameter(Mandatory)][string[]]$Address,
        [switch]$Forwarding,
        [switch]$InNamespace
    )
    $ns = New-WgTestNamespace -Network $Network -Role $Role
    $ifname = "wi$($Network.RunId)$Role"     # 2 + 6 + <=5 chars: within IFNAMSIZ-1 = 15
    $sock = Join-Path $script:UapiDir "$ifname.sock"

    # `ip netns exec` execs the program (no fork), so the process and its PID are wireguard-go's own.
    $psi = if ($InNamespace) { [System.Diagnostics.ProcessStartInfo]::new('ip') } else { [System.Diagnostics.ProcessStartInfo]::new($script:WgGo) }
    if ($InNamespace) { foreach ($a in 'netns', 'exec', $ns, $script:WgGo) { $psi.ArgumentList.Add($a) } }
    $psi.ArgumentList.Add($ifname)
    $psi.Environment['WG_PROCESS_FOREGROUND'] = '1'
    $psi.Environment['LOG_LEVEL'] = 'error'
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $proc = [System.Diagnostics.Process]::new()
    $proc.StartInfo = $psi
    # Drain the pipes asynchronously so wireguard-go never blocks on a full pipe.
    $proc.EnableRaisingEvents = $true
    [void]$proc.Start()
    $proc.BeginOutputReadLine(); $proc.BeginErrorReadLine()
    $dev = [pscustomobject]@{
        PSTypeName = 'WgInterop.Device'
        Role = $Role; Name = $ifname; Namespace = $ns; Process = $proc; Pid = $proc.Id
        PublicKey = (Invoke-WgNative wg 'pubkey' -InputText $PrivateKey)[0].Trim()
        ListenPort = 0; Address = $Address; UapiSocket = $sock
    }
    $Network.Devices.Add($dev)

    if (-not (Wait-WgCondition { (Test-Path -LiteralPath $sock) -or $proc.HasExited } -TimeoutSeconds 10)) {
        throw "wireguard-go for $ifname did not create its UAPI socket $sock within 10 s"
    }
    if ($proc.HasExited) { throw "wireguard-go for $ifname exited with code $($proc.ExitCode)" }

    # Move the TUN before it is up or has any address, so nothing of the test lives in the root namespace.
    if (-not $InNamespace) { Invoke-WgNative ip 'link', 'set', $ifname, 'netns', $ns | Out-Null }
    Invoke-WgNative wg 'set', $ifname, 'private-key', '/dev/stdin', 'listen-port', '0' -InputText $PrivateKey | Out-Null
    $dev.ListenPort = [int](Invoke-WgNative wg 'show', $ifname, 'listen-port')[0]
    foreach ($a in $Address) {
        $ipArgs = @('-n', $ns, 'addr', 'add', $a, 'dev', $ifname)
        if ($a.Contains(':')) { $ipArgs += 'nodad' }   # no duplicate-address detection delay
        Invoke-WgNative ip $ipArgs | Out-Null
    }
    if ($Forwarding) {
        Invoke-InNamespace $ns sysctl '-q', '-w', 'net.ipv4.ip_forward=1' | Out-Null
        Invoke-InNamespace $ns sysctl '-q', '-w', 'net.ipv6.conf.all.forwarding=1' | Out-Null
        # Forwarding in and out of the same TUN is the point of a hub: no redirects for it.
        Invoke-InNamespace $ns sysctl '-q', '-w', 'net.ipv4.conf.all.send_redirects=0' | Out-Null
        Invoke-InNamespace $ns sysctl '-q', '-w', "net.ipv4.conf.$ifname.send_redirects=0" | Out-Null
    }
    Invoke-WgNative ip '-n', $ns, 'link', 'set', $ifname, 'up' | Out-Null
    if ($proc.HasExited) { throw "wireguard-go for $ifname exited after the move (code $($proc.ExitCode))" }
    $dev
}

function Add-WgGoPeer {
    <# Adds or updates a peer on a wireguard-go device (wg set ... peer). Endpoint is "127.0.0.1:port". #>
    param(
        [Parameter(Mandatory)]$Device,
        [Parameter(Mandatory)][string]$PublicKey,
        [Parameter(Mandatory)][string[]]$AllowedIPs,
        [string]$Endpoint,
        [int]$PersistentKeepalive = 0
    )
    $wgArgs = @('set', $Device.Name, 'peer', $PublicKey, 'allowed-ips', ($AllowedIPs -join ','))
    if ($Endpoint) { $wgArgs += 'endpoint', $Endpoint }
    if ($PersistentKeepalive -gt 0) { $wgArgs += 'persistent-keepalive', "$PersistentKeepalive" }
    Invoke-WgNative wg $wgArgs | Out-Null
}

function New-WgGoClient {
    <# A wireguard-go client with one peer (the gateway): New-WgGoDevice + Add-WgGoPeer. #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]$Network,
        [Parameter(Mandatory)][string]$Role,
        [Parameter(Mandatory)][string]$PrivateKey,
        [Parameter(Mandatory)][string[]]$Address,
        [Parameter(Mandatory)][string]$PeerPublicKey,
        [string]$Endpoint,
        [Parameter(Mandatory)][string[]]$AllowedIPs,
        [int]$PersistentKeepalive = 0
    )
    $dev = New-WgGoDevice -Network $Network -Role $Role -PrivateKey $PrivateKey -Address $Address
    Add-WgGoPeer -Device $dev -PublicKey $PeerPublicKey -AllowedIPs $AllowedIPs -Endpoint $Endpoint -PersistentKeepalive $PersistentKeepalive
    $dev
}

function Get-WgGoPeerStat {
    <# The device's peers as `wg show <if> dump` reports them (LatestHandshake $null before the first). #>
    param([Parameter(Mandatory)]$Device)
    $lines = Invoke-WgNative wg 'show', $Device.Name, 'dump'
    foreach ($l in ($lines | Select-Object -Skip 1)) {
        $f = $l -split "`t"
        $hs = [long]$f[4]
        [pscustomobject]@{
            PublicKey       = $f[0]
            Endpoint        = if ($f[2] -eq '(none)') { $null } else { $f[2] }
            AllowedIPs      = $f[3] -split ','
            LatestHandshake = if ($hs -eq 0) { $null } else { [DateTimeOffset]::FromUnixTimeSeconds($hs) }
            ReceivedBytes   = [long]$f[5]
            SentBytes       = [long]$f[6]
        }
    }
}

function Test-Ping {
    <#
      Pings from a namespace with a count and an overall deadline (seconds); returns Success (at least
      -MinReceived replies) and the Received/Transmitted counts. Never throws on loss.
    #>
    param(
        [Parameter(Mandatory)][string]$Namespace,
        [Parameter(Mandatory)][string]$Target,
        [int]$Count = 3,
        [int]$Deadline = 5,
        [int]$MinReceived = 1,
        [double]$Interval = 0.2
    )
    $out = Invoke-InNamespace $Namespace ping '-n', '-c', "$Count", '-w', "$Deadline", '-i', "$Interval", $Target -AllowFailure
    $text = $out -join "`n"
    $tx = 0; $rx = 0
    if ($text -match '(\d+) packets transmitted, (\d+) received') { $tx = [int]$Matches[1]; $rx = [int]$Matches[2] }
    [pscustomobject]@{ Success = $rx -ge $MinReceived; Received = $rx; Transmitted = $tx; Target = $Target }
}

function Remove-WgGatewayTestRun {
    <#
      Cleanup of a suite that started one of our gateways in a test network: stops the server (if it
      is still in the session) and removes the network. Never throws; safe in catch and AfterAll.
    #>
    param([string]$ServerName, $Network)
    if ($ServerName) { Get-WgServer -Name $ServerName -ErrorAction Ignore | Stop-WgServer -Confirm:$false -ErrorAction Ignore }
    if ($Network) { Remove-WgTestNetwork $Network }
}

function Stop-WgGoProcess {
    param([Parameter(Mandatory)]$Device)
    $p = $Device.Process
    if ($null -ne $p -and -not $p.HasExited) {
        # SIGTERM first, so wireguard-go removes its UAPI socket and TUN itself.
        & kill -TERM $p.Id 2>$null
        if (-not $p.WaitForExit(3000)) { $p.Kill(); [void]$p.WaitForExit(3000) }
    }
    Remove-Item -LiteralPath $Device.UapiSocket -Force -ErrorAction Ignore
}

function Remove-WgGoClient {
    <# Stops one wireguard-go device early and deletes its namespace. #>
    param([Parameter(Mandatory)]$Network, [Parameter(Mandatory)]$Device)
    Stop-WgGoProcess -Device $Device
    & ip netns delete $Device.Namespace 2>$null
    [void]$Network.Devices.Remove($Device)
    [void]$Network.Namespaces.Remove($Device.Namespace)
}

function Remove-WgTestNetwork {
    <# Undoes everything a test network created. Never throws: cleanup must always run to the end. #>
    param($Network)
    if ($null -eq $Network) { return }
    foreach ($d in @($Network.Devices)) {
        try { Stop-WgGoProcess -Device $d } catch { Write-Warning "cleanup: stopping $($d.Name): $_" }
    }
    $Network.Devices.Clear()
    foreach ($ns in @($Network.Namespaces)) {
        & ip netns delete $ns 2>$null
        if ($LASTEXITCODE -ne 0 -and (& ip netns list) -match "^$ns\b") { Write-Warning "cleanup: could not delete namespace $ns" }
    }
    $Network.Namespaces.Clear()
    Remove-Item -LiteralPath $Network.TempDir -Recurse -Force -ErrorAction Ignore
}

function Import-WgGatewayModule {
    <#
      Imports WireGuardGateway for a suite: $env:WGI_GATEWAY_MODULE if set (any path Import-Module
      takes), else module/WireGuardGateway.psd1 of this repository, which must be built.
    #>
    $manifest = $env:WGI_GATEWAY_MODULE
    if (-not $manifest) {
        $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
        $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
        if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) {
            throw "WireGuardGateway is not built ($repoRoot/module/bin missing): run ./build.ps1 Build first"
        }
    }
    Import-Module $manifest -Force -Global
}

function Set-WgGoListenPort {
    <#
      Rebinds a wireguard-go device's UDP socket (`wg set <if> listen-port <port>`; 0 = a free port
      the kernel picks): its sessions stay, but everything it sends from now on leaves from the new
      port, i.e. it roams from the gateway's point of view. Updates and returns $Device.ListenPort.
    #>
    param([Parameter(Mandatory)]$Device, [int]$Port = 0)
    $old = $Device.ListenPort
    Invoke-WgNative wg 'set', $Device.Name, 'listen-port', "$Port" | Out-Null
    $new = [int](Invoke-WgNative wg 'show', $Device.Name, 'listen-port')[0]
    if ($Port -eq 0 -and $new -eq $old) {
        # The kernel may hand the same free port back; ask for the next one explicitly.
        Invoke-WgNative wg 'set', $Device.Name, 'listen-port', "$([int]$old % 60000 + 1024)" | Out-Null
        $new = [int](Invoke-WgNative wg 'show', $Device.Name, 'listen-port')[0]
    }
    $Device.ListenPort = $new
    $new
}

function Set-WgGoPeerPresharedKey {
    <# Sets (or with '' removes) the preshared key of a wireguard-go device's peer; the key goes over stdin, never argv. #>
    param([Parameter(Mandatory)]$Device, [Parameter(Mandatory)][string]$PublicKey, [Parameter(Mandatory)][AllowEmptyString()][string]$PresharedKey)
    Invoke-WgNative wg 'set', $Device.Name, 'peer', $PublicKey, 'preshared-key', '/dev/stdin' -InputText $PresharedKey | Out-Null
}

function Start-WgPingStream {
    <#
      Starts a continuous ping (-Count echo requests every -Interval seconds, overall -Deadline) from a
      namespace as a background process; Wait-WgPingStream collects it. The deadline makes sure it
      ends on its own even if the test dies; the caller still stops it in a finally.
    #>
    param(
        [Parameter(Mandatory)][string]$Namespace,
        [Parameter(Mandatory)][string]$Target,
        [Parameter(Mandatory)][int]$Count,
        [double]$Interval = 0.2,
        [int]$Deadline = 0
    )
    if ($Deadline -le 0) { $Deadline = [int][math]::Ceiling($Count * $Interval) + 5 }
    $psi = [System.Diagnostics.ProcessStartInfo]::new('ip')
    foreach ($a in 'netns', 'exec', $Namespace, 'ping', '-n', '-c', "$Count", '-i', "$Interval", '-w', "$Deadline", $Target) {
        $psi.ArgumentList.Add($a)
    }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $proc = [System.Diagnostics.Process]::Start($psi)
    [pscustomobject]@{
        PSTypeName = 'WgInterop.PingStream'
        Process = $proc; Target = $Target; Count = $Count; Deadline = $Deadline
        Stdout = $proc.StandardOutput.ReadToEndAsync(); Stderr = $proc.StandardError.ReadToEndAsync()
        Started = [DateTimeOffset]::UtcNow
    }
}

function Wait-WgPingStream {
    <#
      Waits for a ping stream to end (at most its deadline plus -GraceSeconds) and parses it:
      Transmitted, Received, Lost (count) and LostSeq (the icmp_seq numbers that got no reply).
    #>
    param([Parameter(Mandatory)]$Stream, [int]$GraceSeconds = 10)
    $p = $Stream.Process
    if (-not $p.WaitForExit(($Stream.Deadline + $GraceSeconds) * 1000)) { Stop-WgPingStream $Stream }
    [void]$p.WaitForExit(3000)
    $text = $Stream.Stdout.GetAwaiter().GetResult()
    $tx = 0; $rx = 0
    if ($text -match '(\d+) packets transmitted, (\d+) received') { $tx = [int]$Matches[1]; $rx = [int]$Matches[2] }
    $seen = [System.Collections.Generic.HashSet[int]]::new()
    foreach ($m in [regex]::Matches($text, 'icmp_seq=(\d+)')) { [void]$seen.Add([int]$m.Groups[1].Value) }
    $lostSeq = @(for ($i = 1; $i -le $tx; $i++) { if (-not $seen.Contains($i)) { $i } })
    [pscustomobject]@{
        Transmitted = $tx; Received = $rx; Lost = $tx - $rx; LostSeq = [int[]]$lostSeq
        Output = $text; Target = $Stream.Target
    }
}

function Stop-WgPingStream {
    <# Ends a ping stream early (SIGINT, so ping still prints its summary); never throws. #>
    param([Parameter(Mandatory)]$Stream)
    $p = $Stream.Process
    if ($null -ne $p -and -not $p.HasExited) {
        & kill -INT $p.Id 2>$null
        if (-not $p.WaitForExit(3000)) { try { $p.Kill($true) } catch { } }
    }
}

Export-ModuleMember -Function Test-WgInteropPrerequisite, Write-WgInteropSkipBanner, New-WgTestNetwork,
    Get-WgTestAddress, New-WgTestNamespace, Invoke-InNamespace, Wait-WgCondition, New-WgGoKeyPair,
    New-WgGoDevice, Add-WgGoPeer, New-WgGoClient, Get-WgGoPeerStat, Test-Ping, Remove-WgGoClient,
    Remove-WgTestNetwork, Invoke-WgNative, Import-WgGatewayModule, Set-WgGoListenPort, Set-WgGoPeerPresharedKey,
    Start-WgPingStream, Wait-WgPingStream, Stop-WgPingStream, Remove-WgGatewayTestRun
