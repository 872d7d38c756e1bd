using WgEngine.Device;
using WgEngine.Policy;
using WgEngine.Tests.TestSupport;
using static WgEngine.Tests.Policy.TrafficPolicyTests;

namespace WgEngine.Tests.Policy;

/// <summary>The policy in the device between two clients and the gateway's egress, over real sessions in memory.</summary>
public class HubPolicyTests
{
    private static (WgDevice Gw, WgDevice A, CaptureEgress SinkA, WgDevice B, CaptureEgress SinkB, CaptureEgress GwEgress, global::WgEngine.Crypto.WgKey AKey) Hub(TestNet net)
    {
        var gwEgress = new CaptureEgress();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"], gwEgress);
        var sinkA = new CaptureEgress();
        var sinkB = new CaptureEgress();
        var (a, aKey, _) = net.Create(egress: sinkA);
        var (b, bKey, _) = net.Create(egress: sinkB);
        gw.AddPeer(TestNet.Peer(aKey.PublicKey, ["10.8.0.2/32"]));
        gw.AddPeer(TestNet.Peer(bKey.PublicKey, ["10.8.0.3/32", "192.168.50.0/24"]));
        a.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        b.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        return (gw, a, sinkA, b, sinkB, gwEgress, aKey.PublicKey);
    }

    [Fact]
    public void Isolation_refuses_peer_to_peer_with_icmp_prohibited_and_lets_replies_of_an_allowed_flow_back()
    {
        using var net = new TestNet();
        var (gw, a, sinkA, b, sinkB, gwEgress, aKey) = Hub(net);
        // B talks first so that the gateway has B's endpoint for the later tests.
        Assert.True(b.SendPacket(Tcp("10.8.0.3", "198.51.100.1", 1, 80)));
        gwEgress.Next();

        gw.Policy.PeerIsolation = true;
        var probe = Tcp("10.8.0.2", "10.8.0.3", 40000, 22);
        Assert.True(a.SendPacket(probe));
        var refusal = sinkA.Next();
        Assert.Equal((byte)1, refusal[9]);                    // ICMP
        Assert.Equal((3, 13), (refusal[20], refusal[21]));    // administratively prohibited
        Assert.True(sinkB.Packets.Count == 0);
        Assert.Equal(1, gw.Counters.Policy);

        // A may reach B's site network; B's replies come back although isolation refuses B's own flows.
        gw.UpdatePeer(TestNet.Peer(aKey, ["10.8.0.2/32"]) with { Acl = [.. AclRule.Parse("allow 192.168.50.0/24 tcp 443")] });
        var request = Tcp("10.8.0.2", "192.168.50.7", 40001, 443);
        Assert.True(a.SendPacket(request));
        Assert.Equal(request, sinkB.Next()[..request.Length]);
        var reply = Tcp("192.168.50.7", "10.8.0.2", 443, 40001);
        Assert.True(b.SendPacket(reply));
        Assert.Equal(reply, sinkA.Next()[..reply.Length]);
        Assert.True(b.SendPacket(Tcp("192.168.50.7", "10.8.0.2", 5000, 22)));   // a new flow from B: refused
        TestNet.WaitFor(() => gw.Counters.Policy == 2, "B's own flow to be refused");

        gw.Policy.PeerIsolation = false;
        Assert.True(b.SendPacket(probe = Tcp("10.8.0.3", "10.8.0.2", 5000, 22)));
        Assert.Equal(probe, sinkA.Next()[..probe.Length]);
    }

    [Fact]
    public void A_peers_acl_applies_before_the_egress_and_follows_its_tag()
    {
        using var net = new TestNet();
        var (gw, a, sinkA, _, _, gwEgress, aKey) = Hub(net);
        gw.UpdatePeer(TestNet.Peer(aKey, ["10.8.0.2/32"]) with { Tags = ["staff"] });
        gw.SetTagRules("staff", [.. AclRule.Parse("allow 203.0.113.10/32 tcp 443"), .. AclRule.Parse("deny 203.0.113.10/32")]);
        var ok = Tcp("10.8.0.2", "203.0.113.10", 1000, 443);
        Assert.True(a.SendPacket(ok));
        Assert.Equal(ok, gwEgress.Next());
        var denied = Tcp("10.8.0.2", "203.0.113.10", 1000, 22);
        Assert.True(a.SendPacket(denied));
        var refusal = sinkA.Next();
        Assert.Equal((3, 13), (refusal[20], refusal[21]));
        Assert.Equal(1, gw.Counters.Policy);
        Assert.Equal(["staff"], gw.GetPeer(aKey)!.Tags);

        gw.SetTagRules("staff", []);   // the tag's rules gone: the peer follows at once
        Assert.True(a.SendPacket(denied));
        Assert.Equal(denied, gwEgress.Next());
    }
}
