using Prometheus;
using WgEngine.Gateway;

namespace WgHost.Metrics;

/// <summary>
/// Prometheus metrics of every gateway, read from the engine at each scrape (prometheus-net's
/// before-collect callback), so that nothing is counted twice and the packet path does no extra work.
/// Per peer, the names and labels prometheus_wireguard_exporter writes (so existing WireGuard dashboards
/// work): wireguard_sent_bytes_total, wireguard_received_bytes_total, wireguard_latest_handshake_seconds
/// (UNIX time) with interface, public_key, allowed_ips, friendly_name. Per interface, the engine's own
/// counters from one <see cref="VPNServer.Metrics"/> snapshot (wireguard_gateway_*: traffic, every drop reason, the policy,
/// the userspace and TUN egress) and gauges of configured, enabled and connected peers. The series of
/// a removed peer are dropped.
/// </summary>
public sealed class GatewayMetrics
{
    private static readonly string[] PeerLabels = ["interface", "public_key", "allowed_ips", "friendly_name"];
    private static readonly string[] InterfaceLabel = ["interface"];
    private static readonly TimeSpan ConnectedWithin = TimeSpan.FromSeconds(180);   // WireGuard's Reject-After-Time

    private readonly GatewayService _gateways;
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private readonly HashSet<(string, string, string, string)> _peerSeries = [];
    private readonly Counter _sent, _received;
    private readonly Gauge _handshake, _peers;
    private readonly Dictionary<string, Counter> _interfaceCounters = new();
    private readonly Counter _drops;
    private readonly Dictionary<string, Counter> _egressCounters = new();
    private readonly Dictionary<string, Counter> _tunCounters = new();
    private readonly Gauge _tcpActive, _udpActive;

    public GatewayMetrics(GatewayService gateways, TimeProvider time)
    {
        _gateways = gateways;
        _time = time;
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(Registry);
        _sent = f.CreateCounter("wireguard_sent_bytes_total", "Bytes sent to the peer", PeerLabels);
        _received = f.CreateCounter("wireguard_received_bytes_total", "Bytes received from the peer", PeerLabels);
        _handshake = f.CreateGauge("wireguard_latest_handshake_seconds", "UNIX timestamp seconds of the last handshake", PeerLabels);
        _peers = f.CreateGauge("wireguard_gateway_peers", "Peers by state: configured, enabled, connected (a handshake within 180 s)", ["interface", "state"]);
        foreach (var (name, help) in InterfaceCounters)
            _interfaceCounters[name] = f.CreateCounter("wireguard_gateway_" + name + "_total", help, InterfaceLabel);
        _drops = f.CreateCounter("wireguard_gateway_dropped_packets_by_reason_total",
            "Packets dropped, by reason: malformed, bad_mac1, unknown_index, auth_failed, replayed, not_allowed_source, no_route, "
            + "handshake_invalid, handshake_replayed, queue_full, expired_key, rate_limited, policy, rate_limited_data, quota_exceeded",
            ["interface", "reason"]);
        foreach (var (name, help) in EgressHelp)
            _egressCounters[name] = f.CreateCounter("wireguard_gateway_egress_" + SnakeCase(name) + "_total", help, InterfaceLabel);
        foreach (var (name, help) in TunHelp)
            _tunCounters[name] = f.CreateCounter("wireguard_gateway_tun_" + SnakeCase(name) + "_total", help, InterfaceLabel);
        _tcpActive = f.CreateGauge("wireguard_gateway_egress_tcp_active", "Userspace egress TCP connections open now", InterfaceLabel);
        _udpActive = f.CreateGauge("wireguard_gateway_egress_udp_flows_active", "Userspace egress UDP flows open now", InterfaceLabel);
        Registry.AddBeforeCollectCallback(Update);
    }

    public CollectorRegistry Registry { get; }

    private static readonly (string Name, string Help)[] InterfaceCounters =
    [
        ("received_bytes", "Bytes received on the interface"),
        ("sent_bytes", "Bytes sent on the interface"),
        ("dropped_packets", "Packets dropped, all reasons (wireguard_gateway_dropped_packets_by_reason_total splits them)"),
        ("handshakes_completed", "Handshakes completed"),
        ("cookie_replies_sent", "Cookie replies sent instead of a handshake under load"),
        ("rate_limited_handshakes", "Handshake initiations refused by the per-source rate limit"),
        ("invalid_handshakes", "Handshake messages that failed authentication"),
        ("icmp_echo_replies", "ICMP echo requests to the gateway's own addresses answered"),
        ("send_batches", "Batched sends to the UDP socket (sendmmsg with GSO runs)"),
        ("send_batch_datagrams", "Datagrams sent in those batches (divided by send_batches: the batch size reached)"),
        ("receive_batches", "Receive calls on the UDP socket that returned datagrams (recvmmsg with GRO)"),
        ("receive_batch_datagrams", "Datagrams those calls returned (divided by receive_batches: the batch size reached)"),
        ("receive_coalesced_datagrams", "Datagrams that arrived coalesced by UDP GRO (several of one sender in one receive)"),
        ("inline_receive_batches", "Receive batches the receive thread decrypted itself instead of waking an idle worker"),
        ("parallel_seal_batches", "Outgoing batches sealed on more than one core (one busy peer)"),
        ("parallel_open_batches", "Runs of received packets of one keypair opened on more than one core (one busy peer)"),
        ("policy_denied", "Packets refused by client isolation, a tag rule or a peer's ACL"),
        ("policy_replies_allowed", "Packets a rule would refuse that passed as replies of an allowed flow"),
    ];

    /// <summary>The userspace egress's counters (Egress.EgressCounters), exported as wireguard_gateway_egress_NAME_total;
    /// TcpActive and UdpFlowsActive are gauges.</summary>
    private static readonly Dictionary<string, string> EgressHelp = new()
    {
        ["TcpOpened"] = "Userspace egress TCP connections opened",
        ["TcpRefused"] = "Userspace egress TCP connections refused by the destination",
        ["TcpUnreachable"] = "Userspace egress TCP destinations unreachable",
        ["TcpLimited"] = "Userspace egress TCP connections refused by a limit",
        ["TcpResets"] = "Userspace egress TCP connections reset",
        ["TcpRetransmits"] = "Userspace egress TCP segments retransmitted towards the peers",
        ["UdpFlowsOpened"] = "Userspace egress UDP flows opened",
        ["UdpLimited"] = "Userspace egress UDP flows refused by a limit",
        ["IcmpEchoSent"] = "Userspace egress ICMP echo requests sent",
        ["IcmpEchoReplies"] = "Userspace egress ICMP echo replies received",
        ["IcmpUnavailable"] = "Userspace egress ICMP echo requests not sent: the host allows no unprivileged ICMP socket",
        ["IcmpLimited"] = "Userspace egress ICMP echo requests refused by a limit",
        ["Denied"] = "Userspace egress packets to a destination outside the allow list",
        ["Malformed"] = "Userspace egress packets dropped as malformed",
        ["Unsupported"] = "Userspace egress packets of an unsupported protocol",
    };

    /// <summary>The TUN egress's counters (Tun.TunCounters), exported as wireguard_gateway_tun_NAME_total.</summary>
    private static readonly Dictionary<string, string> TunHelp = new()
    {
        ["ToHostPackets"] = "TUN egress packets written to the host",
        ["ToHostBytes"] = "TUN egress bytes written to the host",
        ["FromHostPackets"] = "TUN egress packets read from the host",
        ["FromHostBytes"] = "TUN egress bytes read from the host",
        ["WriteErrors"] = "TUN egress writes that failed",
        ["ReadErrors"] = "TUN egress reads that failed",
        ["NoPeer"] = "TUN egress packets read for an address no peer has",
        ["GsoReads"] = "TUN egress reads that carried a GSO batch",
        ["Malformed"] = "TUN egress reads whose vnet header did not match the packet",
        ["CoalescedWrites"] = "TUN egress super-packets written (peer packets coalesced)",
        ["CoalescedPackets"] = "TUN egress peer packets written inside super-packets",
        ["CoalesceFallbacks"] = "TUN egress super-packets the kernel refused (written one by one, coalescing off)",
        ["ChecksumsLeftToKernel"] = "TUN egress peer packets written alone whose checksum only the kernel verified (not summed in userspace)",
    };

    /// <summary>"QuotaExceeded" to "quota_exceeded", as Prometheus names go.</summary>
    internal static string SnakeCase(string name)
    {
        var sb = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c) && i > 0 && (char.IsLower(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1])))) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    private void Update()
    {
        lock (_lock)
        {
            var seen = new HashSet<(string, string, string, string)>();
            var now = _time.GetUtcNow();
            foreach (var s in _gateways.Engines)
            {
                int configured = 0, enabled = 0, connected = 0;
                foreach (var p in s.GetPeers())
                {
                    configured++;
                    if (p.Enabled) enabled++;
                    if (p.LatestHandshake is { } h && now - h <= ConnectedWithin) connected++;
                    var labels = (s.Name, p.PublicKey.ToBase64(), string.Join(",", p.AllowedIPs), p.Name ?? "");
                    seen.Add(labels);
                    string[] values = [labels.Item1, labels.Item2, labels.Item3, labels.Item4];
                    _sent.WithLabels(values).IncTo(p.SentBytes);
                    _received.WithLabels(values).IncTo(p.ReceivedBytes);
                    _handshake.WithLabels(values).Set(p.LatestHandshake?.ToUnixTimeSeconds() ?? 0);
                }
                _peers.WithLabels(s.Name, "configured").Set(configured);
                _peers.WithLabels(s.Name, "enabled").Set(enabled);
                _peers.WithLabels(s.Name, "connected").Set(connected);
                // One snapshot of every counter the engine has (VPNServer.Metrics).
                var m = s.Metrics;
                Set(s.Name, "received_bytes", m.ReceivedBytes);
                Set(s.Name, "sent_bytes", m.SentBytes);
                Set(s.Name, "dropped_packets", m.DroppedPackets);
                Set(s.Name, "handshakes_completed", m.HandshakesCompleted);
                Set(s.Name, "cookie_replies_sent", m.CookieRepliesSent);
                Set(s.Name, "rate_limited_handshakes", m.Drops.GetValueOrDefault("RateLimited"));
                Set(s.Name, "invalid_handshakes", m.Drops.GetValueOrDefault("HandshakeInvalid"));
                Set(s.Name, "icmp_echo_replies", m.IcmpEchoReplies);
                Set(s.Name, "send_batches", m.SendBatches);
                Set(s.Name, "send_batch_datagrams", m.SentInBatches);
                Set(s.Name, "receive_batches", m.ReceiveBatches);
                Set(s.Name, "receive_batch_datagrams", m.ReceivedInBatches);
                Set(s.Name, "receive_coalesced_datagrams", m.ReceivedCoalesced);
                Set(s.Name, "inline_receive_batches", m.InlineReceiveBatches);
                Set(s.Name, "parallel_seal_batches", m.ParallelSealBatches);
                Set(s.Name, "parallel_open_batches", m.ParallelOpenBatches);
                foreach (var (reason, count) in m.Drops)
                    _drops.WithLabels(s.Name, SnakeCase(reason)).IncTo(count);
                if (m.Policy is { } policy)
                {
                    Set(s.Name, "policy_denied", policy.GetValueOrDefault("Denied"));
                    Set(s.Name, "policy_replies_allowed", policy.GetValueOrDefault("RepliesAllowed"));
                }
                if (m.Egress is { } e)
                {
                    foreach (var (counter, value) in e)
                    {
                        if (counter == "TcpActive") _tcpActive.WithLabels(s.Name).Set(value);
                        else if (counter == "UdpFlowsActive") _udpActive.WithLabels(s.Name).Set(value);
                        else if (_egressCounters.TryGetValue(counter, out var c)) c.WithLabels(s.Name).IncTo(value);
                    }
                }
                if (m.Tun is { } tun)
                {
                    foreach (var (counter, value) in tun)
                        if (_tunCounters.TryGetValue(counter, out var c)) c.WithLabels(s.Name).IncTo(value);
                }
            }
            foreach (var gone in _peerSeries.Where(l => !seen.Contains(l)).ToList())
            {
                string[] values = [gone.Item1, gone.Item2, gone.Item3, gone.Item4];
                _sent.RemoveLabelled(values);
                _received.RemoveLabelled(values);
                _handshake.RemoveLabelled(values);
                _peerSeries.Remove(gone);
            }
            _peerSeries.UnionWith(seen);
        }
    }

    private void Set(string iface, string counter, long value) => _interfaceCounters[counter].WithLabels(iface).IncTo(value);
}
