# -Egress Tun end to end: a wireguard-go client reaches a server namespace only through our gateway,
# which runs (as root) in its own namespace and hands the client's packets to the kernel through a TUN
# named after the server; the kernel forwards them to srv and routes the replies back into the TUN.
# Unprivileged, the same start fails with TunPermissionDenied. Topology: EgressTopology.psm1.
# Needs the module built (./build.ps1 Build); missing tools skip loudly, or fail under CI=true.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'EgressTopology.psm1') -Force
    $prereq = Test-EgressTopologyPrerequisite
    $skip = (-not $prereq.Ok) -and (-not $prereq.IsCI)
    if ($skip) { Write-WgInteropSkipBanner -Suite 'TunEgress' -Missing $prereq.Missing }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'EgressTopology.psm1') -Force
}

Describe 'Interop prerequisites (TUN egress)' {
    It 'has wireguard-go, wg, ip, ping, python3, socat, curl, setpriv, /dev/net/tun and root' -Skip:$skip {
        (Test-EgressTopologyPrerequisite).Missing | Should -BeNullOrEmpty
    }
}

Describe 'Egress Tun with the gateway as root' -Skip:$skip {
    BeforeAll {
        $topo = New-EgressTopology
        try {
            $svc = Start-EgressServices -Topology $topo -SizeMB 64
            $gw = Start-EgressGateway -Topology $topo -Egress Tun
            if (-not $gw.Ready) { throw "the gateway did not start: $($gw.ErrorId): $($gw.ErrorMessage)" }
            Connect-EgressClient -Topology $topo
        } catch {
            Remove-EgressTopology $topo
            throw
        }
    }
    AfterAll { Remove-EgressTopology $topo }

    It 'creates a TUN named after the server in the gateway namespace, up, MTU 1420, carrying -Address' {
        $link = (Invoke-InEgressNamespace $topo gw ip '-o', 'link', 'show', 'dev', $gw.Name) -join ' '
        $link | Should -Match 'mtu 1420'
        $link | Should -Match '[<,]UP[,>]'
        (Invoke-InEgressNamespace $topo gw ip '-o', 'addr', 'show', 'dev', $gw.Name) -join ' ' | Should -Match ([regex]::Escape("inet $($topo.GatewayTunnel)"))
    }

    It 'leaves the client no way to srv but the tunnel' {
        (Invoke-InEgressNamespace $topo client ip 'route', 'get', $topo.SrvAddress) -join ' ' | Should -Match "dev $($topo.ClientDevice.Name)\b"
    }

    It 'answers a ping of srv from the client through the tunnel' {
        # Until the first handshake completes the first echo may go unanswered; wait for a working path first.
        Wait-WgCondition { (Test-Ping -Namespace $topo.Client -Target $topo.SrvAddress -Count 1 -Deadline 2).Success } -TimeoutSeconds 20 | Should -BeTrue
        $r = Test-Ping -Namespace $topo.Client -Target $topo.SrvAddress -Count 5 -Deadline 10 -MinReceived 5
        $r.Received | Should -BeGreaterOrEqual 5
    }

    It 'downloads 64 MiB from srv over HTTP with a matching SHA-256' {
        $out = Join-Path $topo.Network.TempDir 'download.bin'
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-InEgressNamespace $topo client curl '-sS', '--fail', '--max-time', '240', '-o', $out, $svc.Url | Out-Null
        $sw.Stop()
        (Get-Item -LiteralPath $out).Length | Should -Be $svc.SizeBytes
        (Get-FileHash -LiteralPath $out -Algorithm SHA256).Hash | Should -Be $svc.Sha256
        Write-Host ("TUN egress: {0} MiB in {1:N1} s = {2:N0} Mbit/s" -f ($svc.SizeBytes / 1MB), $sw.Elapsed.TotalSeconds, ($svc.SizeBytes * 8 / 1e6 / $sw.Elapsed.TotalSeconds))
        Remove-Item -LiteralPath $out -Force
    }

    It 'has checksum and TCP segmentation offload on the TUN (IFF_VNET_HDR + TUNSETOFFLOAD)' {
        # SIOCETHTOOL (0x8946) with ETHTOOL_GTXCSUM (0x16) and ETHTOOL_GTSO (0x1e), linux/ethtool.h and
        # sockios.h: the kernel's view of the device's features (ethtool itself is not installed).
        $code = @"
import array,fcntl,socket,struct
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
def get(cmd):
    d=array.array('I',[cmd,0])
    fcntl.ioctl(s.fileno(),0x8946,struct.pack('16sP',b'$($gw.Name)',d.buffer_info()[0])+bytes(16))
    return d[1]
print('txcsum=%d tso=%d'%(get(0x16),get(0x1e)))
"@
        (Invoke-InEgressNamespace $topo gw python3 '-c', $code) -join '' | Should -Be 'txcsum=1 tso=1'
    }

    It 'reads a download from the TUN as TCP super-packets (more bytes per read than the MTU)' {
        # The TUN counts one tx packet per read (tun_put_user), with the whole skb's length: without
        # offloads no read exceeds the MTU (1420). Forwarded traffic arrives as GSO here because srv's
        # TCP stack sends TSO super-packets over the veth, which passes them on unsegmented.
        $stat = { param($what) [long]((Invoke-InEgressNamespace $topo gw cat "/sys/class/net/$($gw.Name)/statistics/$what") -join '') }
        $bytes0 = & $stat 'tx_bytes'; $packets0 = & $stat 'tx_packets'
        $out = Join-Path $topo.Network.TempDir 'download-gso.bin'
        Invoke-InEgressNamespace $topo client curl '-sS', '--fail', '--max-time', '120', '-o', $out, $svc.Url | Out-Null
        (Get-FileHash -LiteralPath $out -Algorithm SHA256).Hash | Should -Be $svc.Sha256
        Remove-Item -LiteralPath $out -Force
        $perRead = ((& $stat 'tx_bytes') - $bytes0) / [math]::Max(1, (& $stat 'tx_packets') - $packets0)
        Write-Host ("TUN reads during the download: {0:N0} bytes each on average" -f $perRead)
        $perRead | Should -BeGreaterThan 1420
    }

    It 'echoes TCP and UDP through the tunnel' {
        $text = "tun-egress-$($topo.RunId)-$(Get-Random)"
        (Invoke-InEgressNamespace $topo client socat '-t', '5', '-T', '10', '-', "TCP:$($svc.TcpEcho)" -InputText $text) -join '' | Should -Be $text
        (Invoke-InEgressNamespace $topo client socat '-t', '3', '-T', '10', '-', "UDP:$($svc.UdpEcho)" -InputText $text) -join '' | Should -Be $text
    }

    It 'removes the TUN when the server stops' {
        Stop-EgressGateway -Topology $topo
        Wait-WgCondition { -not ((Invoke-InEgressNamespace $topo gw ip '-o', 'link', 'show', 'dev', $gw.Name -AllowFailure) -join '') } -TimeoutSeconds 10 |
            Should -BeTrue
        (Invoke-InEgressNamespace $topo gw ip '-o', 'link', 'show', 'dev', 'lo') -join '' | Should -Match 'lo'   # the namespace itself is still there
        $gw.Process.HasExited | Should -BeTrue
    }
}

Describe 'Egress Tun with the gateway as an unprivileged user' -Skip:$skip {
    BeforeAll {
        $topo = New-EgressTopology
        try {
            $gw = Start-EgressGateway -Topology $topo -Egress Tun -Unprivileged
        } catch {
            Remove-EgressTopology $topo
            throw
        }
    }
    AfterAll { Remove-EgressTopology $topo }

    It 'fails with TunPermissionDenied, naming CAP_NET_ADMIN and the userspace alternative' {
        $gw.Ready | Should -BeFalse
        $gw.ErrorId | Should -Be 'TunPermissionDenied'
        $gw.ErrorMessage | Should -Match 'CAP_NET_ADMIN'
        $gw.ErrorMessage | Should -Match '-Egress Userspace'
    }

    It 'leaves no interface behind and the process ends' {
        (Invoke-InEgressNamespace $topo gw ip '-o', 'link', 'show', 'dev', $gw.Name -AllowFailure) -join '' | Should -BeNullOrEmpty
        $gw.Process.WaitForExit(10000) | Should -BeTrue
        $gw.Process.ExitCode | Should -Be 3
    }
}
