# EgressTopology: three throw-away namespaces for the egress suites (TUN and userspace egress).
#
#   client (wireguard-go, its UDP socket AND its TUN live here)
#     | veth 172.31.A.0/30 (.1 client, .2 gw)
#   gw     (our module in a child pwsh started with `ip netns exec`, optionally as nobody/nogroup)
#     | veth 172.31.B.0/30 (.1 gw, .2 srv)
#   srv    (HTTP file server, TCP echo, UDP echo; a route back to the tunnel range via gw)
#
# The client has no route to srv except the one through its WireGuard interface. Names and ranges are
# unique per run; everything created (namespaces, processes) is recorded on the topology object and
# Remove-EgressTopology removes it, never throwing, also after a failure half way through.
# Builds on WgInterop.psm1 (namespaces, key pairs, native calls, cleanup of its test network).

Set-StrictMode -Version Latest
Import-Module (Join-Path $PSScriptRoot 'WgInterop.psm1') -Force -Global

$script:HttpPort = 8080
$script:TcpEchoPort = 7007
$script:UdpEchoPort = 7008
$script:SlowReaderPort = 7009     # accepts and never reads
$script:ClosedPort = 7010         # nothing listens here
$script:DnsPort = 7053            # a tiny DNS-like responder
$script:GatewayPort = 51820

function Test-EgressTopologyPrerequisite {
    <# WgInterop's prerequisites plus the tools of the server namespace and the unprivileged runs. #>
    $base = Test-WgInteropPrerequisite
    $missing = [System.Collections.Generic.List[string]]::new()
    foreach ($m in $base.Missing) { $missing.Add($m) }
    foreach ($tool in 'python3', 'socat', 'curl', 'setpriv', 'sysctl') {
        if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) { $missing.Add($tool) }
    }
    if (-not (Test-Path /dev/net/tun)) { $missing.Add('/dev/net/tun') }
    [pscustomobject]@{ Ok = $missing.Count -eq 0; Missing = [string[]]$missing; IsCI = $base.IsCI }
}

function New-EgressTopology {
    <#
      Creates the three namespaces, both veth links with their addresses, forwarding in gw, srv's route
      back to the tunnel range, and the wireguard-go client (no peer yet: Connect-EgressClient adds the
      gateway once it runs). Returns the topology object; on failure removes what it made and rethrows.
    #>
    [CmdletBinding()]
    param()
    $net = New-WgTestNetwork
    $topo = [pscustomobject]@{
        PSTypeName = 'EgressTopology'
        Network = $net; RunId = $net.RunId
        Client = $null; Gw = $null; Srv = $null
        ClientVeth = $null; GwVethA = $null; GwVethB = $null; SrvAddress = $null; SrvNet = $null
        TunnelNet = "$($net.V4Prefix).0/24"; GatewayTunnel = "$($net.V4Prefix).1/24"; ClientTunnel = "$($net.V4Prefix).2"
        ClientKey = New-WgGoKeyPair; ClientDevice = $null
        Processes = [System.Collections.Generic.List[object]]::new()
        Gateway = $null; Services = $null
    }
    try {
        $topo.Client = New-WgTestNamespace -Network $net -Role 'c'
        $topo.Gw = New-WgTestNamespace -Network $net -Role 'g'
        $topo.Srv = New-WgTestNamespace -Network $net -Role 's'
        $a = 2 * (Get-Random -Maximum 128)
        $b = $a + 1
        $topo.ClientVeth = "172.31.$a.1"; $topo.GwVethA = "172.31.$a.2"
        $topo.GwVethB = "172.31.$b.1"; $topo.SrvAddress = "172.31.$b.2"; $topo.SrvNet = "172.31.$b.0/30"
        # Both ends are created directly inside their namespaces: nothing of the test touches the root one.
        Invoke-WgNative ip '-n', $topo.Client, 'link', 'add', "ec$($net.RunId)", 'type', 'veth', 'peer', 'name', "eg$($net.RunId)", 'netns', $topo.Gw | Out-Null
        Invoke-WgNative ip '-n', $topo.Gw, 'link', 'add', "es$($net.RunId)", 'type', 'veth', 'peer', 'name', "ev$($net.RunId)", 'netns', $topo.Srv | Out-Null
        foreach ($l in @(@($topo.Client, "ec$($net.RunId)", "$($topo.ClientVeth)/30"), @($topo.Gw, "eg$($net.RunId)", "$($topo.GwVethA)/30"),
                         @($topo.Gw, "es$($net.RunId)", "$($topo.GwVethB)/30"), @($topo.Srv, "ev$($net.RunId)", "$($topo.SrvAddress)/30"))) {
            Invoke-WgNative ip '-n', $l[0], 'addr', 'add', $l[2], 'dev', $l[1] | Out-Null
            Invoke-WgNative ip '-n', $l[0], 'link', 'set', $l[1], 'up' | Out-Null
        }
        Invoke-InNamespace $topo.Gw sysctl '-q', '-w', 'net.ipv4.ip_forward=1' | Out-Null
        Invoke-WgNative ip '-n', $topo.Srv, 'route', 'add', $topo.TunnelNet, 'via', $topo.GwVethB | Out-Null
        $topo.ClientDevice = Start-WgGoInNamespace -Topology $topo
        $topo
    } catch {
        Remove-EgressTopology $topo
        throw
    }
}

function Start-WgGoInNamespace {
    <# wireguard-go run inside the client namespace (so its UDP socket uses the veth), key set, tunnel address up. #>
    param([Parameter(Mandatory)]$Topology)
    $net = $Topology.Network
    $ifname = "wi$($net.RunId)c"
    $sock = "/var/run/wireguard/$ifname.sock"
    $proc = Start-NamespaceProcess -Topology $Topology -Namespace $Topology.Client -FilePath 'wireguard-go' -ArgumentList $ifname `
        -Environment @{ WG_PROCESS_FOREGROUND = '1'; LOG_LEVEL = 'error' } -UapiSocket $sock
    if (-not (Wait-WgCondition { (Test-Path -LiteralPath $sock) -or $proc.Process.HasExited } -TimeoutSeconds 10)) {
        throw "wireguard-go for $ifname did not create its UAPI socket $sock within 10 s"
    }
    if ($proc.Process.HasExited) { throw "wireguard-go for $ifname exited with code $($proc.Process.ExitCode): $($proc.Stderr.Result)" }
    # wg reaches a userspace device through its UAPI socket file, which is not namespaced.
    Invoke-WgNative wg 'set', $ifname, 'private-key', '/dev/stdin' -InputText $Topology.ClientKey.PrivateKey | Out-Null
    Invoke-WgNative ip '-n', $Topology.Client, 'addr', 'add', "$($Topology.ClientTunnel)/24", 'dev', $ifname | Out-Null
    Invoke-WgNative ip '-n', $Topology.Client, 'link', 'set', $ifname, 'up' | Out-Null
    # srv is reachable only through the tunnel.
    Invoke-WgNative ip '-n', $Topology.Client, 'route', 'add', $Topology.SrvNet, 'dev', $ifname | Out-Null
    [pscustomobject]@{ Name = $ifname; Namespace = $Topology.Client; Process = $proc.Process; UapiSocket = $sock }
}

function Start-NamespaceProcess {
    <#
      Starts a background process inside a namespace (ip netns exec), optionally as nobody/nogroup with no
      capabilities (setpriv), pipes drained asynchronously, and records it for cleanup. Stdin stays open
      (redirected) so a caller can end a process that waits for EOF by closing it.
    #>
    param(
        [Parameter(Mandatory)]$Topology,
        [Parameter(Mandatory)][string]$Namespace,
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [hashtable]$Environment = @{},
        [switch]$Unprivileged,
        [string]$UapiSocket = ''
    )
    $psi = [System.Diagnostics.ProcessStartInfo]::new('ip')
    $argv = @('netns', 'exec', $Namespace)
    if ($Unprivileged) {
        $argv += 'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs'
    }
    foreach ($x in ($argv + $FilePath + $ArgumentList)) { $psi.ArgumentList.Add($x) }
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $p = [System.Diagnostics.Process]::Start($psi)
    $entry = [pscustomobject]@{
        Process = $p; Name = "$FilePath in $Namespace"; UapiSocket = $UapiSocket
        Stderr = $p.StandardError.ReadToEndAsync()
    }
    $Topology.Processes.Add($entry)
    $entry
}

function Start-EgressGateway {
    <#
      Starts our gateway in gw: a child pwsh imports the module, runs Start-WgServer -Egress $Egress with the
      client as its peer, prints "READY <public key> <port>" (or "ERROR <id><TAB><message>") and runs until
      its stdin closes. -Unprivileged runs it as nobody/nogroup with no capabilities, from a hard-linked copy
      of this pwsh (the NuGet tool folder under /root is not readable by nobody) and a fresh HOME.
      -ServerParameters adds Start-WgServer parameters. Returns Ready, PublicKey, ListenPort, ErrorId,
      ErrorMessage, Name, Process (e.g. for its memory).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]$Topology,
        [Parameter(Mandatory)][ValidateSet('None', 'Userspace', 'Tun')][string]$Egress,
        [switch]$Unprivileged,
        # More Start-WgServer parameters for the child, e.g. @{ EgressAllow = '172.31.0.0/16' } (JSON-serialisable values).
        [hashtable]$ServerParameters = @{},
        [int]$TimeoutSeconds = 90
    )
    $tmp = $Topology.Network.TempDir
    $manifest = $env:WGI_GATEWAY_MODULE
    if (-not $manifest) {
        $repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
        $manifest = Join-Path $repoRoot 'module/WireGuardGateway.psd1'
        if (-not (Test-Path (Join-Path $repoRoot 'module/bin'))) { throw "WireGuardGateway is not built ($repoRoot/module/bin missing): run ./build.ps1 Build first" }
    }
    $script = Join-Path $tmp 'gateway.ps1'
    Set-Content -LiteralPath $script -Value $script:GatewayScript
    $name = "tg$($Topology.RunId)"        # also the TUN's name: 8 characters
    $pwshHome = $PSHOME
    $envVars = @{ DOTNET_NOLOGO = '1'; DOTNET_CLI_TELEMETRY_OPTOUT = '1'; POWERSHELL_TELEMETRY_OPTOUT = '1' }
    if ($Unprivileged) {
        $pwshHome = Join-Path $tmp 'pwsh'
        if (-not (Test-Path $pwshHome)) {
            & cp -al $PSHOME $pwshHome 2>$null
            if ($LASTEXITCODE -ne 0) { Invoke-WgNative cp '-a', $PSHOME, $pwshHome | Out-Null }
        }
        $home_ = Join-Path $tmp 'home-nobody'
        New-Item -ItemType Directory -Path $home_ -Force | Out-Null
        Invoke-WgNative chown 'nobody:nogroup', $home_ | Out-Null
        $envVars.HOME = $home_; $envVars.DOTNET_CLI_HOME = $home_; $envVars.XDG_RUNTIME_DIR = $home_
        # Everything the child needs must be readable by nobody; say which part is not.
        foreach ($path in (Join-Path $pwshHome 'pwsh.dll'), $manifest, $script, (Get-Command dotnet).Source) {
            & setpriv --reuid=nobody --regid=nogroup --clear-groups test -r $path
            if ($LASTEXITCODE -ne 0) { throw "the unprivileged gateway cannot read $path as nobody: make it (and its parent folders) world-readable" }
        }
    }
    $argv = @((Join-Path $pwshHome 'pwsh.dll'), '-NoProfile', '-NonInteractive', '-File', $script,
        $manifest, $name, "$script:GatewayPort", $Topology.GatewayTunnel, $Egress, $Topology.ClientKey.PublicKey, "$($Topology.ClientTunnel)/32",
        [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes((ConvertTo-Json -Compress -InputObject $ServerParameters))))
    $entry = Start-NamespaceProcess -Topology $Topology -Namespace $Topology.Gw -FilePath (Get-Command dotnet).Source -ArgumentList $argv `
        -Environment $envVars -Unprivileged:$Unprivileged -UapiSocket "/var/run/wireguard/$name.sock"
    $gw = [pscustomobject]@{
        Name = $name; Egress = $Egress; Unprivileged = [bool]$Unprivileged; Process = $entry.Process; Entry = $entry
        Ready = $false; PublicKey = $null; ListenPort = 0; ErrorId = $null; ErrorMessage = $null; Output = [System.Collections.Generic.List[string]]::new()
    }
    $Topology.Gateway = $gw
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    $reader = $entry.Process.StandardOutput
    while ($true) {
        $left = [int]($deadline - [DateTime]::UtcNow).TotalMilliseconds
        if ($left -le 0) { throw "the gateway did not report READY or ERROR within $TimeoutSeconds s: $($gw.Output -join ' | ')" }
        $task = $reader.ReadLineAsync()
        if (-not $task.Wait($left)) { throw "the gateway did not report READY or ERROR within $TimeoutSeconds s: $($gw.Output -join ' | ')" }
        $line = $task.Result
        if ($null -eq $line) {
            [void]$entry.Process.WaitForExit(5000)
            throw "the gateway exited ($($entry.Process.ExitCode)) before it was ready: $($gw.Output -join ' | ') $($entry.Stderr.Result)"
        }
        $gw.Output.Add($line)
        if ($line -match '^READY (\S+) (\d+)$') { $gw.Ready = $true; $gw.PublicKey = $Matches[1]; $gw.ListenPort = [int]$Matches[2]; break }
        if ($line -match "^ERROR ([^`t]*)`t(.*)$") { $gw.ErrorId = $Matches[1]; $gw.ErrorMessage = $Matches[2]; break }
    }
    $gw.Entry | Add-Member -NotePropertyName Stdout -NotePropertyValue $reader.ReadToEndAsync()
    $gw
}

function Connect-EgressClient {
    <# Gives the wireguard-go client the running gateway as its peer for the tunnel range and srv's network
       (plus -ExtraAllowedIPs, e.g. destinations a test routes into the tunnel to see them refused). #>
    param([Parameter(Mandatory)]$Topology, [string[]]$ExtraAllowedIPs = @())
    $gw = $Topology.Gateway
    if (-not $gw -or -not $gw.Ready) { throw 'the gateway is not running' }
    Add-WgGoPeer -Device $Topology.ClientDevice -PublicKey $gw.PublicKey -AllowedIPs (@($Topology.TunnelNet, $Topology.SrvNet) + $ExtraAllowedIPs) `
        -Endpoint "$($Topology.GwVethA):$($gw.ListenPort)" -PersistentKeepalive 25
}

function Stop-EgressGateway {
    <# Ends the gateway: closes its stdin (it stops its server and exits), kills it after 10 s. Never throws. #>
    param([Parameter(Mandatory)]$Topology)
    $gw = $Topology.Gateway
    if (-not $gw) { return }
    $p = $gw.Process
    try {
        if (-not $p.HasExited) {
            try { $p.StandardInput.Close() } catch { }
            if (-not $p.WaitForExit(10000)) { $p.Kill($true); [void]$p.WaitForExit(5000) }
        }
    } catch { Write-Warning "cleanup: stopping the gateway: $_" }
    $Topology.Gateway = $null
}

function Start-EgressServices {
    <#
      Starts srv's services: an HTTP server over a folder with a random file of -SizeMB MiB, a TCP echo and
      a UDP echo. Returns their URLs/ports and the file's SHA-256, and waits until all three listen.
    #>
    param([Parameter(Mandatory)]$Topology, [int]$SizeMB = 64)
    $www = Join-Path $Topology.Network.TempDir 'www'
    New-Item -ItemType Directory -Path $www -Force | Out-Null
    $file = Join-Path $www 'blob.bin'
    $buf = [byte[]]::new(1MB)
    $fs = [System.IO.File]::Create($file)
    try { for ($i = 0; $i -lt $SizeMB; $i++) { [System.Random]::Shared.NextBytes($buf); $fs.Write($buf, 0, $buf.Length) } }
    finally { $fs.Dispose() }
    $srv = $Topology.Srv
    $a = $Topology.SrvAddress
    Start-NamespaceProcess -Topology $Topology -Namespace $srv -FilePath 'python3' -ArgumentList '-m', 'http.server', '--bind', $a, '--directory', $www, "$script:HttpPort" | Out-Null
    Start-NamespaceProcess -Topology $Topology -Namespace $srv -FilePath 'socat' -ArgumentList "TCP-LISTEN:$script:TcpEchoPort,bind=$a,fork,reuseaddr", 'PIPE' | Out-Null
    Start-NamespaceProcess -Topology $Topology -Namespace $srv -FilePath 'socat' -ArgumentList "UDP-RECVFROM:$script:UdpEchoPort,bind=$a,fork", 'PIPE' | Out-Null
    $ok = Wait-WgCondition -TimeoutSeconds 15 -IntervalMilliseconds 100 -Condition {
        $tcp = (Invoke-InNamespace $srv ss '-Htln' -AllowFailure) -join "`n"
        $udp = (Invoke-InNamespace $srv ss '-Huln' -AllowFailure) -join "`n"
        $tcp.Contains("$a`:$script:HttpPort") -and $tcp.Contains("$a`:$script:TcpEchoPort") -and $udp.Contains("$a`:$script:UdpEchoPort")
    }
    if (-not $ok) { throw "srv's services did not start listening within 15 s" }
    $Topology.Services = [pscustomobject]@{
        Url = "http://$a`:$script:HttpPort/blob.bin"; File = $file; Sha256 = (Get-FileHash -LiteralPath $file -Algorithm SHA256).Hash
        SizeBytes = [long]$SizeMB * 1MB; TcpEcho = "$a`:$script:TcpEchoPort"; UdpEcho = "$a`:$script:UdpEchoPort"
    }
    $Topology.Services
}

function Get-EgressGatewayStat {
    <# The running gateway's egress counters (EgressCounters as a hashtable), or with -Property Metrics every engine
       counter (ServerMetrics), asked through its stdin. #>
    param([Parameter(Mandatory)]$Topology, [int]$TimeoutSeconds = 10, [ValidateSet('EgressStats', 'Metrics')][string]$Property = 'EgressStats')
    $gw = $Topology.Gateway
    if (-not $gw -or -not $gw.Ready -or $gw.Process.HasExited) { throw 'the gateway is not running' }
    # A folder the gateway can write to: nobody's HOME when it runs unprivileged.
    $dir = if ($gw.Unprivileged) { Join-Path $Topology.Network.TempDir 'home-nobody' } else { $Topology.Network.TempDir }
    $path = Join-Path $dir "stats-$([guid]::NewGuid().ToString('n')).json"
    $gw.Process.StandardInput.WriteLine("STATS $path $Property")
    $gw.Process.StandardInput.Flush()
    if (-not (Wait-WgCondition { Test-Path -LiteralPath $path } -TimeoutSeconds $TimeoutSeconds)) { throw "the gateway wrote no stats within $TimeoutSeconds s" }
    $stats = Get-Content -Raw -LiteralPath $path | ConvertFrom-Json -AsHashtable
    Remove-Item -LiteralPath $path -Force -ErrorAction Ignore
    if ($stats.ContainsKey('Error')) { throw "the gateway could not read its stats: $($stats.Error)" }
    $stats
}

function Invoke-EgressGatewayCommand {
    <# Runs one of the module's cmdlets inside the running gateway (e.g. Set-WgServer with new egress rules); throws its error. #>
    param([Parameter(Mandatory)]$Topology, [Parameter(Mandatory)][string]$Command, [hashtable]$Parameters = @{}, [int]$TimeoutSeconds = 20)
    $gw = $Topology.Gateway
    if (-not $gw -or -not $gw.Ready -or $gw.Process.HasExited) { throw 'the gateway is not running' }
    $dir = if ($gw.Unprivileged) { Join-Path $Topology.Network.TempDir 'home-nobody' } else { $Topology.Network.TempDir }
    $path = Join-Path $dir "call-$([guid]::NewGuid().ToString('n')).json"
    $call = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes((ConvertTo-Json -Compress -Depth 5 -InputObject @{ Command = $Command; Parameters = $Parameters })))
    $gw.Process.StandardInput.WriteLine("CALL $call $path")
    $gw.Process.StandardInput.Flush()
    if (-not (Wait-WgCondition { Test-Path -LiteralPath $path } -TimeoutSeconds $TimeoutSeconds)) { throw "the gateway did not answer $Command within $TimeoutSeconds s" }
    $r = Get-Content -Raw -LiteralPath $path | ConvertFrom-Json -AsHashtable
    Remove-Item -LiteralPath $path -Force -ErrorAction Ignore
    if ($r.ContainsKey('Error')) { throw "$Command in the gateway failed: $($r.Error)" }
}

function Add-EgressSrvAddress {
    <#
      Gives srv one more address (a /32 on its veth, inside the run's namespaces only) that the client routes
      into the tunnel and gw routes to srv, e.g. a private-range host the default policy must refuse. The
      client's peer must carry it in AllowedIPs (Connect-EgressClient -ExtraAllowedIPs).
    #>
    param([Parameter(Mandatory)]$Topology, [Parameter(Mandatory)][string]$Address)
    $r = $Topology.RunId
    Invoke-WgNative ip '-n', $Topology.Srv, 'addr', 'add', "$Address/32", 'dev', "ev$r" | Out-Null
    Invoke-WgNative ip '-n', $Topology.Gw, 'route', 'add', "$Address/32", 'via', $Topology.SrvAddress | Out-Null
    Invoke-WgNative ip '-n', $Topology.Client, 'route', 'add', "$Address/32", 'dev', $Topology.ClientDevice.Name | Out-Null
}

function Get-EgressProcessStatus {
    <# Uid (real, effective), CapEff (hex) and VmRSS (bytes) of a process, from /proc/<pid>/status. #>
    param([Parameter(Mandatory)][int]$ProcessId)
    $lines = Get-Content -LiteralPath "/proc/$ProcessId/status"
    $get = { param($key) ($lines | Where-Object { $_ -like "${key}:*" } | Select-Object -First 1) -replace "^${key}:\s*", '' }
    $uids = (& $get 'Uid') -split '\s+'
    $rss = (& $get 'VmRSS') -replace '\s*kB$', ''
    [pscustomobject]@{ RealUid = [int]$uids[0]; EffectiveUid = [int]$uids[1]; CapEff = (& $get 'CapEff'); RssBytes = [long]$rss * 1024 }
}

function Start-EgressExtraService {
    <#
      More of srv for the userspace egress suite: a TCP server that accepts and never reads (64 KiB receive
      buffer, so the sender stalls soon), a DNS-like UDP responder (answers each A query with 192.0.2.<query
      length>, echoing the id and question) and a port nothing listens on. Adds SlowReader, Dns and ClosedPort
      to $Topology.Services (after Start-EgressServices) and waits until both listen.
    #>
    param([Parameter(Mandatory)]$Topology)
    $srv = $Topology.Srv
    $a = $Topology.SrvAddress
    $slow = Join-Path $Topology.Network.TempDir 'slow_reader.py'
    Set-Content -LiteralPath $slow -Value $script:SlowReaderPy
    $dns = Join-Path $Topology.Network.TempDir 'dns_responder.py'
    Set-Content -LiteralPath $dns -Value $script:DnsResponderPy
    Start-NamespaceProcess -Topology $Topology -Namespace $srv -FilePath 'python3' -ArgumentList $slow, $a, "$script:SlowReaderPort" | Out-Null
    Start-NamespaceProcess -Topology $Topology -Namespace $srv -FilePath 'python3' -ArgumentList $dns, $a, "$script:DnsPort" | Out-Null
    $ok = Wait-WgCondition -TimeoutSeconds 15 -IntervalMilliseconds 100 -Condition {
        $tcp = (Invoke-InNamespace $srv ss '-Htln' -AllowFailure) -join "`n"
        $udp = (Invoke-InNamespace $srv ss '-Huln' -AllowFailure) -join "`n"
        $tcp.Contains("$a`:$script:SlowReaderPort") -and $udp.Contains("$a`:$script:DnsPort")
    }
    if (-not $ok) { throw "srv's slow reader and DNS responder did not start listening within 15 s" }
    if ($Topology.Services) {
        $Topology.Services | Add-Member -Force -NotePropertyMembers @{
            SlowReader = "$a`:$script:SlowReaderPort"; Dns = "$a`:$script:DnsPort"; ClosedPort = "$a`:$script:ClosedPort" }
    }
    [pscustomobject]@{ SlowReader = "$a`:$script:SlowReaderPort"; Dns = "$a`:$script:DnsPort"; ClosedPort = "$a`:$script:ClosedPort" }
}

function Invoke-InEgressNamespace {
    <# Runs a command in one of the topology's namespaces by role: client, gw or srv. #>
    param(
        [Parameter(Mandatory)]$Topology,
        [Parameter(Mandatory)][ValidateSet('client', 'gw', 'srv')][string]$Role,
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [string]$InputText,
        [switch]$AllowFailure
    )
    $ns = @{ client = $Topology.Client; gw = $Topology.Gw; srv = $Topology.Srv }[$Role]
    $argv = @('netns', 'exec', $ns, $FilePath) + $ArgumentList
    if ($PSBoundParameters.ContainsKey('InputText')) { Invoke-WgNative ip $argv -InputText $InputText -AllowFailure:$AllowFailure }
    else { Invoke-WgNative ip $argv -AllowFailure:$AllowFailure }
}

function Remove-EgressTopology {
    <#
      Undoes everything: the gateway (gracefully first), every process started here (whole trees), any
      process still left inside the run's namespaces (by pid, from `ip netns pids`), then the namespaces
      and temp folder through Remove-WgTestNetwork. Never throws.
    #>
    param($Topology)
    if ($null -eq $Topology) { return }
    Stop-EgressGateway -Topology $Topology
    foreach ($e in @($Topology.Processes)) {
        try {
            if (-not $e.Process.HasExited) { $e.Process.Kill($true); [void]$e.Process.WaitForExit(5000) }
            if ($e.UapiSocket) { Remove-Item -LiteralPath $e.UapiSocket -Force -ErrorAction Ignore }
        } catch { Write-Warning "cleanup: $($e.Name): $_" }
    }
    $Topology.Processes.Clear()
    foreach ($ns in @($Topology.Network.Namespaces)) {
        foreach ($id in @(& ip netns pids $ns 2>$null)) {
            if ($id -match '^\d+$') { & kill -KILL $id 2>$null }
        }
    }
    Remove-WgTestNetwork $Topology.Network
}

# Accepts connections and never reads from them; a small receive buffer (inherited from the listener)
# makes the sender's window close soon. Runs until killed.
$script:SlowReaderPy = @'
import socket, sys, time
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
ls.bind((sys.argv[1], int(sys.argv[2])))
ls.listen(64)
held = []
while True:
    c, _ = ls.accept()
    held.append(c)
'@

# A DNS-like responder: for a standard query (one question, QTYPE A) answers NOERROR with the question
# and one A record 192.0.2.<length of the query datagram>, TTL 60. Anything else gets FORMERR. Wire format: RFC 1035 §4.1.
$script:DnsResponderPy = @'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    q, peer = s.recvfrom(2048)
    if len(q) < 12:
        continue
    qid, flags, qd = struct.unpack('!HHH', q[:6])
    i = 12
    while i < len(q) and q[i] != 0:
        i += 1 + q[i]
    end = i + 5
    if qd != 1 or end > len(q) or struct.unpack('!H', q[i + 1:i + 3])[0] != 1:
        s.sendto(struct.pack('!HHHHHH', qid, 0x8001, 0, 0, 0, 0), peer)
        continue
    answer = struct.pack('!HHHIH', 0xC00C, 1, 1, 60, 4) + bytes([192, 0, 2, len(q) & 0xFF])
    s.sendto(struct.pack('!HHHHHH', qid, 0x8180 | (flags & 0x0100), 1, 1, 0, 0) + q[12:end] + answer, peer)
'@

# The child gateway. Arguments: manifest, name, port, address, egress, peer key, peer allowed IPs, and
# further Start-WgServer parameters as base64 JSON.
$script:GatewayScript = @'
param($Manifest, $Name, $Port, $Address, $Egress, $PeerKey, $PeerAllowed, $MoreJson)
$ErrorActionPreference = 'Stop'
try {
    Import-Module $Manifest
    $more = @{}
    if ($MoreJson) { $more = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($MoreJson)) | ConvertFrom-Json -AsHashtable }
    $s = Start-WgServer -Name $Name -ListenPort ([int]$Port) -Address ($Address -split ',') -Egress $Egress @more
    if ($PeerKey) { Add-WgPeer -Server $Name -PublicKey $PeerKey -AllowedIPs ($PeerAllowed -split ',') | Out-Null }
    [Console]::Out.WriteLine("READY $($s.PublicKey) $($s.ListenPort)")
    [Console]::Out.Flush()
} catch {
    [Console]::Out.WriteLine("ERROR $(($_.FullyQualifiedErrorId -split ',')[0])`t$($_.Exception.Message -replace '\s+', ' ')")
    [Console]::Out.Flush()
    exit 3
}
# Runs until the test closes stdin (or kills it). "STATS <path> [property]" writes the egress counters (or the
# server's property named, e.g. Metrics) there as JSON
# (through a temporary file and a rename, so the reader never sees half a file). "CALL <base64 JSON
# {Command, Parameters}> <path>" runs one of the module's cmdlets (e.g. Set-WgServer) and writes {Ok} or
# {Error} there the same way.
while ($null -ne ($line = [Console]::In.ReadLine())) {
    if ($line -match '^CALL (\S+) (.+)$') {
        $path = $Matches[2]
        try {
            $call = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($Matches[1])) | ConvertFrom-Json -AsHashtable
            $cmd = Get-Command -Module WireGuardGateway -Name $call.Command -ErrorAction Stop
            $p = $call.Parameters
            & $cmd @p -Confirm:$false -WarningAction SilentlyContinue | Out-Null
            @{ Ok = $true } | ConvertTo-Json -Compress | Set-Content -LiteralPath "$path.tmp"
        } catch { @{ Error = "$(($_.FullyQualifiedErrorId -split ',')[0]): $_" } | ConvertTo-Json -Compress | Set-Content -LiteralPath "$path.tmp" }
        Move-Item -LiteralPath "$path.tmp" -Destination $path -Force
    }
    if ($line -match '^STATS (\S+)(?: (EgressStats|Metrics))?$') {
        $path = $Matches[1]
        $property = if ($Matches[2]) { $Matches[2] } else { 'EgressStats' }
        try { (Get-WgServer -Name $Name).$property | ConvertTo-Json -Compress -Depth 4 | Set-Content -LiteralPath "$path.tmp" }
        catch { @{ Error = "$_" } | ConvertTo-Json -Compress | Set-Content -LiteralPath "$path.tmp" }
        Move-Item -LiteralPath "$path.tmp" -Destination $path -Force
    }
}
Stop-WgServer -Name $Name -Confirm:$false
'@

Export-ModuleMember -Function Test-EgressTopologyPrerequisite, New-EgressTopology, Start-EgressGateway, Connect-EgressClient,
    Stop-EgressGateway, Start-EgressServices, Invoke-InEgressNamespace, Remove-EgressTopology, Start-NamespaceProcess,
    Get-EgressGatewayStat, Get-EgressProcessStatus, Start-EgressExtraService, Invoke-EgressGatewayCommand, Add-EgressSrvAddress
