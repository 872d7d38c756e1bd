# FleetSupport: the real components of the fleet tests (docs/fleet.md), each started with unique names and
# removed afterwards: a private PostgreSQL cluster (initdb in a temp folder, its own port on loopback and its
# own unix-socket folder, run as the `postgres` system user since postgres refuses root), fleet instances as
# pwsh child processes (Start-WgServer -Registry), nginx's stream module as the UDP load balancer (its own
# config, pid and log files in the temp folder), and a test lan: a namespace with a bridge that instance,
# balancer and client namespaces join by veth, at private addresses of the run (never in the root namespace).

Set-StrictMode -Version Latest

$script:PgBin = '/usr/lib/postgresql/15/bin'

function Test-FleetPrerequisite {
    <# What the fleet tests need beyond the interop tools; IsCI says whether a skip must fail. #>
    $missing = [System.Collections.Generic.List[string]]::new()
    if (-not (Test-Path "$script:PgBin/initdb")) { $missing.Add('postgresql (initdb, pg_ctl)') }
    if (-not (Get-Command nginx -CommandType Application -ErrorAction Ignore)) { $missing.Add('nginx') }
    if (-not (Test-Path '/usr/lib/nginx/modules/ngx_stream_module.so')) { $missing.Add('libnginx-mod-stream') }
    if (-not (Get-Command runuser -CommandType Application -ErrorAction Ignore)) { $missing.Add('runuser') }
    [pscustomobject]@{ Ok = $missing.Count -eq 0; Missing = [string[]]$missing; IsCI = $env:CI -eq 'true' }
}

function Test-FleetSuiteSkip([string]$Suite) {
    <# BeforeDiscovery of a fleet suite: true (with the skip banner) when tools are missing and this is not CI. #>
    $prereq = Test-WgInteropPrerequisite
    $missing = @($prereq.Missing) + @((Test-FleetPrerequisite).Missing)
    $skip = ($missing.Count -gt 0) -and -not $prereq.IsCI
    if ($skip) { Write-WgInteropSkipBanner -Suite $Suite -Missing $missing }
    $skip
}

function New-FleetTestRun {
    <#
      A fleet suite's start: a test network, a fleet secret (0600) and a private PostgreSQL cluster in its temp folder,
      and a fleet named $Prefix + the run id at the network's first address (New-WgFleet writes its key file).
      On failure everything made so far is removed and the error rethrown. Remove with Remove-FleetTestRun.
    #>
    param([Parameter(Mandatory)][string]$Prefix)
    $net = New-WgTestNetwork
    $run = [pscustomobject]@{
        Net = $net; Dir = $net.TempDir; Fleet = "$Prefix$($net.RunId)"; Gw = (Get-WgTestAddress $net 1)
        SecretPath = (Join-Path $net.TempDir 'fleet.secret'); KeyPath = (Join-Path $net.TempDir 'fleet.key'); Pg = $null; Created = $null
    }
    try {
        Set-Content -Path $run.SecretPath -Value ([Convert]::ToBase64String([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(32)))
        & chmod 600 $run.SecretPath
        $run.Pg = New-FleetPostgres -Folder $run.Dir
        $run.Created = New-WgFleet -Registry $run.Pg.ConnectionString -Name $run.Fleet -Address "$($run.Gw.V4)/24" -ListenPort 51820 `
            -FleetSecretPath $run.SecretPath -PrivateKeyPath $run.KeyPath
    } catch {
        Remove-FleetPostgres $run.Pg; Remove-WgTestNetwork $net
        throw
    }
    $run
}

function Get-FreePort([ValidateSet('Tcp', 'Udp')][string]$Protocol = 'Tcp') {
    if ($Protocol -eq 'Tcp') {
        $l = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $l.Start(); try { $l.LocalEndpoint.Port } finally { $l.Stop() }
    } else {
        $u = [System.Net.Sockets.UdpClient]::new([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, 0))
        try { $u.Client.LocalEndPoint.Port } finally { $u.Dispose() }
    }
}

function Invoke-AsPostgres([string]$Tool, [string[]]$ArgumentList) {
    $out = & runuser -u postgres -- "$script:PgBin/$Tool" @ArgumentList 2>&1
    if ($LASTEXITCODE -ne 0) { throw "$Tool $($ArgumentList -join ' ') failed ($LASTEXITCODE): $($out -join "`n")" }
}

function New-FleetPostgres {
    <# A private cluster in $Folder/pg on 127.0.0.1 and a free port; returns its object (ConnectionString). #>
    param([Parameter(Mandatory)][string]$Folder)
    $root = Join-Path $Folder 'pg'
    $sock = Join-Path $root 'sock'
    New-Item -ItemType Directory -Force $sock | Out-Null
    & chown -R postgres: $root
    $pg = [pscustomobject]@{
        Root = $root; Data = (Join-Path $root 'data'); Socket = $sock; Log = (Join-Path $root 'server.log'); Port = (Get-FreePort)
        ConnectionString = $null
    }
    $pg.ConnectionString = "Host=127.0.0.1;Port=$($pg.Port);Username=wg;Database=postgres;Timeout=3;Command Timeout=10"
    # The same server through its unix socket (a path, so reachable from any network namespace: instances on the lan).
    $pg | Add-Member SocketConnectionString "Host=$sock;Port=$($pg.Port);Username=wg;Database=postgres;Timeout=3;Command Timeout=10"
    Invoke-AsPostgres initdb @('-D', $pg.Data, '-U', 'wg', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C')
    Start-FleetPostgres $pg
    $pg
}

function Start-FleetPostgres($Pg) {
    Invoke-AsPostgres pg_ctl @('-D', $Pg.Data, '-l', $Pg.Log, '-w', '-t', '60', '-o', "-p $($Pg.Port) -k $($Pg.Socket) -c listen_addresses=127.0.0.1 -c fsync=off", 'start')
}

function Stop-FleetPostgres($Pg) {
    Invoke-AsPostgres pg_ctl @('-D', $Pg.Data, '-m', 'immediate', '-w', 'stop')
}

function Remove-FleetPostgres($Pg) {
    <# Never throws. #>
    if ($null -eq $Pg) { return }
    if (Test-Path (Join-Path $Pg.Data 'postmaster.pid')) { try { Stop-FleetPostgres $Pg } catch { Write-Warning "cleanup: $_" } }
    Remove-Item -LiteralPath $Pg.Root -Recurse -Force -ErrorAction Ignore
}

function Start-FleetInstance {
    <#
      A fleet instance in its own pwsh process: Start-WgServer -Registry ... -ListenPort $Port with a UAPI
      socket /var/run/wireguard/$Name.sock (so `wg show $Name` reads it). Returns once it serves (its ready file).
      -MeshPort: the instance's mesh (the cross-instance hub) on $BindAddress:$MeshPort; none without it.
      -Namespace: the process runs inside that network namespace (a lan host, Add-FleetLanHost), binds
      -BindAddress there, and reaches the registry through PostgreSQL's unix socket.
    #>
    param(
        [Parameter(Mandatory)][string]$Manifest, [Parameter(Mandatory)]$Pg, [Parameter(Mandatory)][string]$Fleet,
        [Parameter(Mandatory)][string]$SecretPath, [Parameter(Mandatory)][string]$KeyPath,
        [Parameter(Mandatory)][int]$Port, [Parameter(Mandatory)][string]$Name, [Parameter(Mandatory)][string]$Folder,
        [int]$MeshPort = -1, [string]$Namespace, [string]$BindAddress = '127.0.0.1'
    )
    $ready = Join-Path $Folder "$Name.ready"
    $log = Join-Path $Folder "$Name.log"
    Remove-Item $ready -ErrorAction Ignore
    $script = Join-Path $Folder "instance.ps1"
    Set-Content -Path $script -Value @'
param($Manifest, $Fleet, $SecretPath, $KeyPath, $Port, $Name, $Ready, $MeshPort, $BindAddress)
$ErrorActionPreference = 'Stop'
Import-Module $Manifest
$mesh = ($MeshPort -ne 'off') ? @{ MeshListenPort = [int]$MeshPort } : @{}
$s = Start-WgServer -Name $Name -Registry $env:WG_TEST_REGISTRY -Fleet $Fleet -FleetSecretPath $SecretPath -PrivateKeyPath $KeyPath `
    -ListenPort $Port -BindAddress $BindAddress -UapiPath "/var/run/wireguard/$Name.sock" -InstanceId $Name -Egress None @mesh
Set-Content -Path $Ready -Value $s.PublicKey
$s | Wait-WgServer
'@
    $exe = Join-Path $PSHOME 'pwsh'
    # `ip netns exec` execs pwsh (no fork, and dotnet runs pwsh.dll in its own process): the PID is the instance's.
    $command = if (Test-Path $exe) { @($exe) } else { @('dotnet', (Join-Path $PSHOME 'pwsh.dll')) }
    if ($Namespace) { $command = @('ip', 'netns', 'exec', $Namespace) + $command }
    $psi = [System.Diagnostics.ProcessStartInfo]::new($command[0])
    foreach ($a in @($command | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $script, $Manifest, $Fleet, $SecretPath, $KeyPath, "$Port", $Name, $ready, ($MeshPort -ge 0 ? "$MeshPort" : 'off'), $BindAddress)) { $psi.ArgumentList.Add($a) }
    # The connection string by environment, not on the command line.
    $psi.Environment['WG_TEST_REGISTRY'] = $Namespace ? $Pg.SocketConnectionString : $Pg.ConnectionString
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $proc = [System.Diagnostics.Process]::new()
    $proc.StartInfo = $psi
    $out = [System.Collections.Concurrent.ConcurrentQueue[string]]::new()
    $handler = { if ($null -ne $EventArgs.Data) { $Event.MessageData.Enqueue($EventArgs.Data) } }
    Register-ObjectEvent $proc OutputDataReceived -Action $handler -MessageData $out | Out-Null
    Register-ObjectEvent $proc ErrorDataReceived -Action $handler -MessageData $out | Out-Null
    [void]$proc.Start()
    $proc.BeginOutputReadLine(); $proc.BeginErrorReadLine()
    $instance = [pscustomobject]@{ Name = $Name; Port = $Port; Address = $BindAddress; Endpoint = "$($BindAddress):$Port"; Process = $proc; Output = $out; Uapi = "/var/run/wireguard/$Name.sock" }
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    while (-not (Test-Path $ready)) {
        if ($proc.HasExited) { throw "instance $Name exited ($($proc.ExitCode)): $($out.ToArray() -join "`n")" }
        if ($sw.Elapsed.TotalSeconds -gt 60) { Stop-FleetInstance $instance -Kill; throw "instance $Name did not start within 60 s: $($out.ToArray() -join "`n")" }
        Start-Sleep -Milliseconds 100
    }
    $instance
}

function Stop-FleetInstance {
    <# -Kill: SIGKILL (a crash); else SIGTERM. Never throws. #>
    param($Instance, [switch]$Kill)
    if ($null -eq $Instance) { return }
    $p = $Instance.Process
    if (-not $p.HasExited) {
        & kill ($Kill ? '-KILL' : '-TERM') $p.Id 2>$null
        if (-not $p.WaitForExit(10000)) { try { $p.Kill($true) } catch { } ; [void]$p.WaitForExit(5000) }
    }
    Remove-Item -LiteralPath $Instance.Uapi -Force -ErrorAction Ignore
}

function Start-FleetBalancer {
    <#
      nginx's stream module on $ListenAddress:$Port (UDP), `hash $remote_addr consistent` over the instances'
      endpoints (address:port): a client's packets go to one instance; one that refuses (ICMP port unreachable)
      is skipped for 30 s. -Namespace: nginx runs inside that namespace (the lan's).
    #>
    param([Parameter(Mandatory)][string]$Folder, [Parameter(Mandatory)][int]$Port, [Parameter(Mandatory)][string[]]$Upstream,
        [string]$ListenAddress = '127.0.0.1', [string]$Namespace)
    $dir = Join-Path $Folder 'nginx'
    New-Item -ItemType Directory -Force $dir | Out-Null
    $servers = ($Upstream | ForEach-Object { "        server $_ max_fails=1 fail_timeout=30s;" }) -join "`n"
    $conf = Join-Path $dir 'nginx.conf'
    Set-Content -Path $conf -Value @"
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 256; }
stream {
    upstream fleet {
        hash `$remote_addr consistent;
$servers
    }
    server {
        listen $($ListenAddress):$Port udp;
        proxy_pass fleet;
        proxy_timeout 20s;
        proxy_next_upstream on;
    }
}
"@
    $command = $Namespace ? @('ip', 'netns', 'exec', $Namespace, 'nginx') : @('nginx')   # ip execs nginx: the PID is nginx's
    $psi = [System.Diagnostics.ProcessStartInfo]::new($command[0])
    foreach ($a in @($command | Select-Object -Skip 1) + @('-c', $conf, '-p', $dir, '-e', (Join-Path $dir 'error.log'))) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $proc = [System.Diagnostics.Process]::Start($psi)
    $lb = [pscustomobject]@{ Port = $Port; Process = $proc; Folder = $dir }
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    while (-not (Test-Path (Join-Path $dir 'nginx.pid'))) {
        if ($proc.HasExited) { throw "nginx exited ($($proc.ExitCode)): $(Get-Content -Raw -ErrorAction Ignore (Join-Path $dir 'error.log'))" }
        if ($sw.Elapsed.TotalSeconds -gt 20) { Stop-FleetBalancer $lb; throw 'nginx did not start within 20 s' }
        Start-Sleep -Milliseconds 100
    }
    $lb
}

function Stop-FleetBalancer($Balancer) {
    if ($null -eq $Balancer) { return }
    $p = $Balancer.Process
    if (-not $p.HasExited) { & kill -TERM $p.Id 2>$null; if (-not $p.WaitForExit(5000)) { try { $p.Kill() } catch { } } }
}

function Get-UapiPeerKey([string]$Name) {
    <# The public keys of the peers a device (an instance's UAPI socket) has; none when unreachable. #>
    $out = & wg show $Name peers 2>$null
    if ($LASTEXITCODE -ne 0) { return @() }
    @($out | Where-Object { $_ })
}

function New-FleetLan {
    <#
      The run's test lan: namespace wgi<run>lan with a bridge at 10.<run octet>.128.1/24 (private, apart from the
      run's tunnel range 10.<octet>.0.0/24). Hosts join with Add-FleetLanHost. Removed with the test network.
    #>
    param([Parameter(Mandatory)]$Network)
    $ns = New-WgTestNamespace -Network $Network -Role 'lan'
    $prefix = $Network.V4Prefix -replace '\.0$', '.128'
    Invoke-WgNative ip '-n', $ns, 'link', 'add', 'br0', 'type', 'bridge' | Out-Null
    Invoke-WgNative ip '-n', $ns, 'addr', 'add', "$prefix.1/24", 'dev', 'br0' | Out-Null
    Invoke-WgNative ip '-n', $ns, 'link', 'set', 'br0', 'up' | Out-Null
    [pscustomobject]@{ Network = $Network; Namespace = $ns; Prefix = $prefix; Address = "$prefix.1" }
}

function Add-FleetLanHost {
    <#
      Joins namespace $Namespace to the lan as host $HostNumber: a veth pair made inside the lan namespace (h<n>
      on the bridge) whose other end (lan0) moves straight into $Namespace with $Prefix.<n>/24. Returns the address.
    #>
    param([Parameter(Mandatory)]$Lan, [Parameter(Mandatory)][string]$Namespace, [Parameter(Mandatory)][ValidateRange(2, 254)][int]$HostNumber)
    $address = "$($Lan.Prefix).$HostNumber"
    Invoke-WgNative ip '-n', $Lan.Namespace, 'link', 'add', "h$HostNumber", 'type', 'veth', 'peer', 'name', 'lan0', 'netns', $Namespace | Out-Null
    Invoke-WgNative ip '-n', $Lan.Namespace, 'link', 'set', "h$HostNumber", 'master', 'br0', 'up' | Out-Null
    Invoke-WgNative ip '-n', $Namespace, 'addr', 'add', "$address/24", 'dev', 'lan0' | Out-Null
    Invoke-WgNative ip '-n', $Namespace, 'link', 'set', 'lan0', 'up' | Out-Null
    $address
}

Export-ModuleMember -Function New-FleetLan, Add-FleetLanHost, Test-FleetPrerequisite, Test-FleetSuiteSkip, New-FleetTestRun, Get-FreePort, New-FleetPostgres, Start-FleetPostgres, Stop-FleetPostgres,
    Remove-FleetPostgres, Start-FleetInstance, Stop-FleetInstance, Start-FleetBalancer, Stop-FleetBalancer, Get-UapiPeerKey
