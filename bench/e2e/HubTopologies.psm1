# The three hub topologies that hub-iperf.ps1 and hub-latency.ps1 measure, built once per run on a
# tests/Interop/WgInterop.psm1 network (import that module first):
#   (a) direct: two wireguard-go devices tunnelled to each other (the floor);
#   (b1) two wireguard-go clients through a wireguard-go hub with kernel forwarding (the reference);
#   (b2) the same through our gateway (Start-WgServer -Egress None) in this pwsh, when the module is built;
#   (b3) with -WithPolicy, the same through a second gateway with the traffic policy on (issue 12 item 6):
#        -PeerIsolation, ten ACL rules on the measured peer and one on its tag, walked to the last rule
#        by every packet, and a third, rate-limited peer beside them; the measured peers are unlimited.

function Get-Median([double[]] $xs) {
    $s = [double[]]($xs | Sort-Object); $n = $s.Count
    if ($n % 2) { $s[($n - 1) / 2] } else { ($s[$n / 2 - 1] + $s[$n / 2]) / 2 }
}

# The names in the order of round $Round (0-based), rotated one place per round so that no topology
# always runs first (warm caches, thermal drift): the A/B alternation of every hub benchmark.
function Get-RoundOrder([string[]] $Names, [int] $Round) {
    for ($i = 0; $i -lt $Names.Count; $i++) { $Names[($i + $Round) % $Names.Count] }
}

# Returns @{ Topologies = [ordered] name -> @{ C; S; Target; Hub }; Server = our WgServer or $null;
# ExtraServers = the policy-on gateway of -WithPolicy, if any }.
# C pings/sends to Target (S's tunnel address); Hub is the hub's process (for CPU accounting) or $null.
# Every path carries a ping before it is returned: a broken topology throws instead of measuring 0.
function New-HubTopologies {
    param(
        [Parameter(Mandatory)] $Network,
        [Parameter(Mandatory)] [string] $RepoRoot,
        [string] $Module,
        [switch] $SkipGateway,
        [switch] $WithPolicy,
        [string] $ServerName = "gwb$($Network.RunId)"
    )
    $net = $Network
    $topos = [ordered]@{}
    $A = { param($n) Get-WgTestAddress $net $n }

    # (a) direct: d1 <-> d2, d2 dials d1.
    $k1 = New-WgGoKeyPair; $k2 = New-WgGoKeyPair
    $a1 = & $A 11; $a2 = & $A 12
    $d1 = New-WgGoDevice -Network $net -Role d1 -PrivateKey $k1.PrivateKey -Address $a1.V4Cidr
    $d2 = New-WgGoClient -Network $net -Role d2 -PrivateKey $k2.PrivateKey -Address $a2.V4Cidr -PeerPublicKey $k1.PublicKey `
        -Endpoint "127.0.0.1:$($d1.ListenPort)" -AllowedIPs $a1.V4Host -PersistentKeepalive 25
    Add-WgGoPeer -Device $d1 -PublicKey $k2.PublicKey -AllowedIPs $a2.V4Host
    $topos['direct (wireguard-go <-> wireguard-go)'] = @{ C = $d1; S = $d2; Target = $a2.V4; Hub = $null }

    # (b1) wireguard-go hub with kernel forwarding in its namespace.
    $kh = New-WgGoKeyPair; $kc1 = New-WgGoKeyPair; $kc2 = New-WgGoKeyPair
    $ah = & $A 21; $ac1 = & $A 22; $ac2 = & $A 23
    $hub = New-WgGoDevice -Network $net -Role h -PrivateKey $kh.PrivateKey -Address $ah.V4Cidr -Forwarding
    Add-WgGoPeer $hub $kc1.PublicKey $ac1.V4Host
    Add-WgGoPeer $hub $kc2.PublicKey $ac2.V4Host
    $hc = foreach ($x in @(@('h1', $kc1, $ac1), @('h2', $kc2, $ac2))) {
        New-WgGoClient -Network $net -Role $x[0] -PrivateKey $x[1].PrivateKey -Address $x[2].V4Cidr -PeerPublicKey $kh.PublicKey `
            -Endpoint "127.0.0.1:$($hub.ListenPort)" -AllowedIPs $ah.V4Net -PersistentKeepalive 25
    }
    $topos['hub: wireguard-go + kernel forwarding'] = @{ C = $hc[0]; S = $hc[1]; Target = $ac2.V4; Hub = $hub.Process }

    # (b2) our gateway, in this process.
    $server = $null
    $extraServers = @()
    if (-not $Module) { $Module = Join-Path $RepoRoot 'module/WireGuardGateway.psd1' }
    $built = (Test-Path $Module) -and ($Module -ne (Join-Path $RepoRoot 'module/WireGuardGateway.psd1') -or (Test-Path (Join-Path $RepoRoot 'module/bin')))
    if ($SkipGateway) {
        Write-Host 'SKIPPED: our gateway (-SkipGateway)' -ForegroundColor Yellow
    } elseif (-not $built) {
        Write-Host "SKIPPED: our gateway - module not built ($Module); run ./build.ps1 Build first" -ForegroundColor Yellow
    } else {
        Import-Module $Module -Force -Global
        $ag = & $A 31; $ag1 = & $A 32; $ag2 = & $A 33
        $server = Start-WgServer -Name $ServerName -ListenPort 0 -Address "$($ag.V4)/24" -Egress None
        $kg1 = New-WgGoKeyPair; $kg2 = New-WgGoKeyPair
        Add-WgPeer -Server $server.Name -PublicKey $kg1.PublicKey -AllowedIPs $ag1.V4Host | Out-Null
        Add-WgPeer -Server $server.Name -PublicKey $kg2.PublicKey -AllowedIPs $ag2.V4Host | Out-Null
        $gc = foreach ($x in @(@('g1', $kg1, $ag1), @('g2', $kg2, $ag2))) {
            New-WgGoClient -Network $net -Role $x[0] -PrivateKey $x[1].PrivateKey -Address $x[2].V4Cidr -PeerPublicKey $server.PublicKey `
                -Endpoint "127.0.0.1:$($server.ListenPort)" -AllowedIPs $ag.V4Net -PersistentKeepalive 25
        }
        $topos['hub: WireGuardGateway (this pwsh)'] = @{ C = $gc[0]; S = $gc[1]; Target = $ag2.V4; Hub = [System.Diagnostics.Process]::GetCurrentProcess() }

        if ($WithPolicy) {
            # (b3) the same hub with the policy on. Isolation refuses peer-to-peer traffic unless a rule
            # of the sender allows it; the first matching rule decides, so the allowing rules come last
            # and every packet is compared against all the others first (documentation addresses
            # 198.51.100.0/24, never reached). Replies of the allowed flow pass by the flow tracker.
            $ap = & $A 41; $ap1 = & $A 42; $ap2 = & $A 43; $ap3 = & $A 44
            $policyServer = Start-WgServer -Name "${ServerName}p" -ListenPort 0 -Address "$($ap.V4)/24" -Egress None -PeerIsolation
            $kp1 = New-WgGoKeyPair; $kp2 = New-WgGoKeyPair; $kp3 = New-WgGoKeyPair
            $deny = foreach ($i in 1..8) { "deny 198.51.100.$i/32 tcp $(6000 + $i)" }
            Set-WgTag -Server $policyServer.Name -Name bench -Acl 'deny 198.51.100.100/32 udp 53' | Out-Null
            Add-WgPeer -Server $policyServer.Name -PublicKey $kp1.PublicKey -AllowedIPs $ap1.V4Host | Out-Null
            Set-WgPeer -Server $policyServer.Name -PublicKey $kp1.PublicKey -Tag bench `
                -Acl (@($deny) + "allow $($ap2.V4)/32 icmp", "allow $($ap2.V4)/32 tcp 5201") | Out-Null
            Add-WgPeer -Server $policyServer.Name -PublicKey $kp2.PublicKey -AllowedIPs $ap2.V4Host | Out-Null
            Set-WgPeer -Server $policyServer.Name -PublicKey $kp2.PublicKey -Acl "allow $($ap1.V4)/32 icmp" | Out-Null
            Add-WgPeer -Server $policyServer.Name -PublicKey $kp3.PublicKey -AllowedIPs $ap3.V4Host | Out-Null
            Set-WgPeer -Server $policyServer.Name -PublicKey $kp3.PublicKey -UploadLimitMbps 20 -DownloadLimitMbps 20 | Out-Null
            $pc = foreach ($x in @(@('p1', $kp1, $ap1), @('p2', $kp2, $ap2))) {
                New-WgGoClient -Network $net -Role $x[0] -PrivateKey $x[1].PrivateKey -Address $x[2].V4Cidr -PeerPublicKey $policyServer.PublicKey `
                    -Endpoint "127.0.0.1:$($policyServer.ListenPort)" -AllowedIPs $ap.V4Net -PersistentKeepalive 25
            }
            $topos['hub: WireGuardGateway, policy on'] = @{ C = $pc[0]; S = $pc[1]; Target = $ap2.V4; Hub = [System.Diagnostics.Process]::GetCurrentProcess() }
            $extraServers += $policyServer
        }
    }

    # Both directions handshaken, so the first measured samples time the data path, not a handshake.
    foreach ($name in $topos.Keys) {
        $t = $topos[$name]
        [void](Test-Ping $t.S.Namespace ($t.C.Address[0] -replace '/.*') -Count 1 -Deadline 5)
        $p = Test-Ping $t.C.Namespace $t.Target -Count 3 -Deadline 5 -MinReceived 1
        if (-not $p.Success) { throw "no ping through '$name' ($($t.Target))" }
    }
    @{ Topologies = $topos; Server = $server; ExtraServers = $extraServers }
}

Export-ModuleMember -Function Get-Median, Get-RoundOrder, New-HubTopologies
