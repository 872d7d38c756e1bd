using Prometheus;
using WgEngine.Gateway;

namespace WgHost.Metrics;

/// <summary>
/// Prometheus metrics of every gateway, read from the engine at each scrape (prometheus-net's
/// before-collect callback), so that nothing is counted twice and the packet path does no extra work.
/// Per peer, the names and labels prometheus_wireguard_exporter writes (so existing WireGuard dashboards
/// work): wireguard_sent_bytes_total, wireguard_received_bytes_total, wireguard_latest_handshake_seconds
/// (UNIX time) with interface, public_key, allowed_ips, friendly_name. Per interface, the engine's own
/// counters (wireguard_gateway_*) and gauges of configured, enabled and connected peers. The series of
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
        _tcpActive = f.CreateGauge("wireguard_gateway_egress_tcp_active", "Userspace egress TCP connections open now", InterfaceLabel);
        _udpActive = f.CreateGauge("wireguard_gateway_egress_udp_flows_active", "Userspace egress UDP flows open now", InterfaceLabel);
        Registry.AddBeforeCollectCallback(Update);
    }

    public CollectorRegistry Registry { get; }

    private static readonly (string Name, string Help)[] InterfaceCounters =
    [
        ("received_bytes", "Bytes received on the interface"),
        ("sent_bytes", "Bytes sent on the interface"),
        ("dropped_packets", "Packets dropped (malformed, unknown peer, replay, no route)"),
        ("handshakes_completed", "Handshakes completed"),
        ("cookie_replies_sent", "Cookie replies sent instead of a handshake under load"),
        ("rate_limited_handshakes", "Handshake initiations refused by the per-source rate limit"),
        ("invalid_handshakes", "Handshake messages that failed authentication"),
        ("egress_tcp_opened", "Userspace egress TCP connections opened"),
        ("egress_tcp_refused", "Userspace egress TCP connections refused by the destination"),
        ("egress_tcp_unreachable", "Userspace egress TCP destinations unreachable"),
        ("egress_tcp_limited", "Userspace egress TCP connections refused by a limit"),
        ("egress_udp_flows_opened", "Userspace egress UDP flows opened"),
        ("egress_udp_limited", "Userspace egress UDP flows refused by a limit"),
        ("egress_icmp_echo_sent", "Userspace egress ICMP echo requests sent"),
        ("egress_denied", "Userspace egress packets to a destination outside the allow list"),
        ("egress_malformed", "Userspace egress packets dropped as malformed"),
        ("egress_unsupported", "Userspace egress packets of an unsupported protocol"),
    ];

    private void Update()
    {
        lock (_lock)
        {
            var seen = new HashSet<(string, string, string, string)>();
            var now = _time.GetUtcNow();
            foreach (var s in _gateways.Servers)
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
                var st = s.Stats;
                Set(s.Name, "received_bytes", st.ReceivedBytes);
                Set(s.Name, "sent_bytes", st.SentBytes);
                Set(s.Name, "dropped_packets", st.DroppedPackets);
                Set(s.Name, "handshakes_completed", st.HandshakesCompleted);
                Set(s.Name, "cookie_replies_sent", st.CookieRepliesSent);
                Set(s.Name, "rate_limited_handshakes", st.RateLimitedHandshakes);
                Set(s.Name, "invalid_handshakes", st.InvalidHandshakes);
                if (s.EgressCounters is { } e)
                {
                    Set(s.Name, "egress_tcp_opened", e.TcpOpened);
                    Set(s.Name, "egress_tcp_refused", e.TcpRefused);
                    Set(s.Name, "egress_tcp_unreachable", e.TcpUnreachable);
                    Set(s.Name, "egress_tcp_limited", e.TcpLimited);
                    Set(s.Name, "egress_udp_flows_opened", e.UdpFlowsOpened);
                    Set(s.Name, "egress_udp_limited", e.UdpLimited);
                    Set(s.Name, "egress_icmp_echo_sent", e.IcmpEchoSent);
                    Set(s.Name, "egress_denied", e.Denied);
                    Set(s.Name, "egress_malformed", e.Malformed);
                    Set(s.Name, "egress_unsupported", e.Unsupported);
                    _tcpActive.WithLabels(s.Name).Set(e.TcpActive);
                    _udpActive.WithLabels(s.Name).Set(e.UdpFlowsActive);
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
