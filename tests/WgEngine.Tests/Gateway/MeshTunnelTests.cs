using System.Net;
using WgEngine.Conn;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Gateway;

/// <summary>
/// The cross-instance hub's route decision and mesh (docs/fleet.md), on an in-memory network: two gateways A and B
/// that both know clients X (10.8.0.2, session on A) and Y (10.8.0.3, session on B), each with a mesh tunnel
/// whose peer is the other gateway holding the other's clients.
/// </summary>
public sealed class MeshTunnelTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private readonly TestNet _net = new();
    private readonly List<IDisposable> _owned = new();
    private readonly WgDevice _a, _b, _x, _y;
    private readonly CaptureEgress _atX = new(), _atY = new(), _atZ = new();
    private readonly WgKey _xKey, _yKey;
    private readonly ChannelBind _aBind;

    public MeshTunnelTests()
    {
        WgPrivateKey aKey, bKey, xKey, yKey;
        ChannelBind bBind;
        (_a, aKey, _aBind) = _net.Create(["10.8.0.1/24"]);
        (_b, bKey, bBind) = _net.Create(["10.8.0.1/24"]);
        (_x, xKey, _) = _net.Create(egress: _atX);
        (_y, yKey, _) = _net.Create(egress: _atY);
        _xKey = xKey.PublicKey;
        _yKey = yKey.PublicKey;
        foreach (var gw in new[] { _a, _b })
        {
            gw.AddPeer(TestNet.Peer(_xKey, ["10.8.0.2/32"]));
            gw.AddPeer(TestNet.Peer(_yKey, ["10.8.0.3/32"]));
        }
        _x.AddPeer(TestNet.Peer(aKey.PublicKey, ["0.0.0.0/0"], _aBind.LocalEndPoint));
        _y.AddPeer(TestNet.Peer(bKey.PublicKey, ["0.0.0.0/0"], bBind.LocalEndPoint));
    }

    private (MeshTunnel A, MeshTunnel B) Mesh()
    {
        var aBind = _net.Network.CreateBind(41001);
        var bBind = _net.Network.CreateBind(41002);
        var ma = MeshTunnel.Start(_a, WgPrivateKey.Generate(), aBind, _net.Time);
        var mb = MeshTunnel.Start(_b, WgPrivateKey.Generate(), bBind, _net.Time);
        _owned.Add(ma);
        _owned.Add(mb);
        ma.SetPeers([new MeshPeer(mb.NodeKey, bBind.LocalEndPoint, [IpPrefix.Parse("10.8.0.3/32")])]);
        mb.SetPeers([new MeshPeer(ma.NodeKey, aBind.LocalEndPoint, [IpPrefix.Parse("10.8.0.2/32")])]);
        return (ma, mb);
    }

    /// <summary>Each client's session on its own gateway: a first packet to the gateway's address (answered there).</summary>
    private void Connect()
    {
        Assert.True(_x.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        Assert.True(_y.SendPacket(Packets.EchoRequestV4("10.8.0.3", "10.8.0.1", 2, 1)));
        _atX.Next(Patience);
        _atY.Next(Patience);
    }

    [Fact]
    public void A_packet_for_a_peer_held_by_the_other_gateway_crosses_the_mesh_and_the_reply_comes_back()
    {
        var (ma, mb) = Mesh();
        Connect();
        var ping = Packets.EchoRequestV4("10.8.0.2", "10.8.0.3", 7, 1);
        Assert.True(_x.SendPacket(ping));
        Assert.Equal(ping, _atY.Next(Patience));
        Assert.Equal(1, ma.Relayed);
        Assert.Equal(1, mb.Delivered);

        var reply = Packets.EchoRequestV4("10.8.0.3", "10.8.0.2", 8, 1);
        Assert.True(_y.SendPacket(reply));
        Assert.Equal(reply, _atX.Next(Patience));
        Assert.Equal(1, mb.Relayed);
        Assert.Equal(1, ma.Delivered);
        Assert.Equal(0, _a.Counters.NoRoute + _b.Counters.NoRoute);
    }

    [Fact]
    public void Without_a_mesh_the_same_packet_does_not_reach_the_other_gateways_peer()
    {
        Connect();
        Assert.True(_x.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.3", 7, 1)));
        Assert.False(_atY.Packets.TryTake(out _, TimeSpan.FromSeconds(1)));
        Assert.Equal(0, _a.Counters.Relayed);
    }

    [Fact]
    public void A_peer_with_a_session_here_is_served_here_even_when_the_mesh_claims_it()
    {
        var (ma, _) = Mesh();
        var (z, zKey, _) = _net.Create(egress: _atZ);
        _a.AddPeer(TestNet.Peer(zKey.PublicKey, ["10.8.0.4/32"]));
        z.AddPeer(TestNet.Peer(_a.PublicKey, ["0.0.0.0/0"], _aBind.LocalEndPoint));
        Connect();
        Assert.True(z.SendPacket(Packets.EchoRequestV4("10.8.0.4", "10.8.0.1", 3, 1)));
        _atZ.Next(Patience);
        // The mesh now (wrongly) says B holds Z as well: the local session wins.
        ma.SetPeers([ma.Peers[0] with { AllowedIPs = [IpPrefix.Parse("10.8.0.3/32"), IpPrefix.Parse("10.8.0.4/32")] }]);
        var ping = Packets.EchoRequestV4("10.8.0.2", "10.8.0.4", 9, 1);
        Assert.True(_x.SendPacket(ping));
        Assert.Equal(ping, _atZ.Next(Patience));
        Assert.Equal(0, ma.Relayed);
    }

    [Fact]
    public void The_senders_policy_applies_before_the_mesh()
    {
        var (ma, mb) = Mesh();
        Connect();
        _a.Policy.PeerIsolation = true;
        Assert.True(_x.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.3", 7, 1)));
        TestNet.WaitFor(() => _a.Counters.Policy == 1, "the isolation refusal", 5000);
        Assert.Equal(0, ma.Relayed);
        Assert.Equal(0, mb.Delivered);
        Assert.Empty(_atY.Packets);
    }

    [Fact]
    public void What_arrives_from_the_mesh_for_a_peer_not_held_here_is_never_relayed_again()
    {
        var (ma, mb) = Mesh();
        Connect();
        // A believes B holds W (10.8.0.9), B believes A does: a loop if B relayed what the mesh brought.
        var w = WgPrivateKey.Generate();
        _owned.Add(w);
        foreach (var gw in new[] { _a, _b }) gw.AddPeer(TestNet.Peer(w.PublicKey, ["10.8.0.9/32"]));
        ma.SetPeers([ma.Peers[0] with { AllowedIPs = [IpPrefix.Parse("10.8.0.3/32"), IpPrefix.Parse("10.8.0.9/32")] }]);
        mb.SetPeers([mb.Peers[0] with { AllowedIPs = [IpPrefix.Parse("10.8.0.2/32"), IpPrefix.Parse("10.8.0.9/32")] }]);
        Assert.True(_x.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.9", 7, 1)));
        TestNet.WaitFor(() => mb.Delivered == 1, "B to take the packet from the mesh", 5000);
        Assert.Equal(1, ma.Relayed);
        Assert.Equal(0, mb.Relayed);   // B handed it to its (session-less) peer W, not back into the mesh
        Assert.Equal(0, ma.Delivered);
    }

    [Fact]
    public void Mesh_peers_follow_the_list_given_and_a_prefix_moves_between_them()
    {
        var (ma, _) = Mesh();
        using var c = WgPrivateKey.Generate();
        var b = ma.Peers[0];
        var cEp = new IPEndPoint(IPAddress.Loopback, 41003);
        ma.SetPeers([b with { AllowedIPs = [] }, new MeshPeer(c.PublicKey, cEp, [IpPrefix.Parse("10.8.0.3/32")])]);
        var status = ma.PeerStatuses.ToDictionary(p => p.PublicKey);
        Assert.Empty(status[b.NodeKey].AllowedIPs);
        Assert.Equal([IpPrefix.Parse("10.8.0.3/32")], status[c.PublicKey].AllowedIPs);
        Assert.Equal(cEp, status[c.PublicKey].Endpoint);
        ma.SetPeers([new MeshPeer(ma.NodeKey, cEp, []), new MeshPeer(c.PublicKey, cEp, [IpPrefix.Parse("10.8.0.3/32")])]);
        Assert.Equal([c.PublicKey], ma.PeerStatuses.Select(p => p.PublicKey).ToArray());   // B gone; its own key is never a peer
        ma.SetPeers([]);
        Assert.Empty(ma.PeerStatuses);
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _net.Dispose();
    }
}
