using System.Diagnostics;
using System.Net;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgEngine.Tests.Gateway;

public class VPNServerTests
{
    private FakeBackend? _fake;

    private VPNServer Start(params string[] addresses) => VPNServer.Start(new ServerOptions
    {
        ListenPort = 0,
        Addresses = addresses.Length == 0 ? [IpPrefix.Parse("10.8.0.1/24")] : addresses.Select(IpPrefix.Parse).ToList(),
        BackendFactory = c => _fake = new FakeBackend(c),
    });

    private static WgKey NewKey() => WgPrivateKey.Generate().PublicKey;
    private static IReadOnlyList<IpPrefix> Ips(params string[] s) => s.Select(IpPrefix.Parse).ToList();

    [Fact]
    public void Start_reports_backend_facts_and_generates_a_key()
    {
        using var s = Start();
        Assert.Equal("wg0", s.Name);
        Assert.Equal(40000, s.ListenPort);
        Assert.Equal("Fake", s.BackendKind);
        Assert.Equal(ServerState.Running, s.State);
        Assert.False(s.PublicKey.IsZero);
        Assert.Equal(_fake!.Config.PrivateKey.PublicKey, s.PublicKey);
        _fake.Stats = new InterfaceStats(123, 456, 0);
        Assert.Equal(123, s.ReceivedBytes);
        Assert.Equal(456, s.SentBytes);
        s.Stop();
        Assert.Equal(ServerState.Stopped, s.State);
        Assert.True(s.Completion.IsCompleted);
    }

    [Fact]
    public void Userspace_egress_is_the_default_and_reaches_the_backend_with_its_options()
    {
        FakeBackend? fake = null;
        var allow = new[] { IpPrefix.Parse("192.0.2.0/24") };
        using (var s = VPNServer.Start(new ServerOptions { ListenPort = 0, BackendFactory = c => fake = new FakeBackend(c) }))
        {
            Assert.Equal(EgressMode.Userspace, s.Egress);
            Assert.Equal(EgressMode.Userspace, fake!.Config.Egress);
            Assert.Null(fake.Config.EgressOptions);
        }
        var options = new WgEngine.Egress.EgressOptions { Allow = allow };
        using (var s = VPNServer.Start(new ServerOptions { ListenPort = 0, EgressOptions = options, BackendFactory = c => fake = new FakeBackend(c) }))
            Assert.Same(options, fake!.Config.EgressOptions);
    }

    [Fact]
    public void Allocation_never_gives_the_gateway_address_and_reuses_freed_ones()
    {
        using var s = Start("10.8.0.1/24");
        var k1 = NewKey(); var k2 = NewKey(); var k3 = NewKey();
        Assert.Equal(Ips("10.8.0.2/32"), s.AddPeer(new PeerSpec { PublicKey = k1 }).AllowedIPs);
        Assert.Equal(Ips("10.8.0.3/32"), s.AddPeer(new PeerSpec { PublicKey = k2, AllowedIPs = [] }).AllowedIPs);
        Assert.True(s.RemovePeer(k1));
        Assert.Equal(Ips("10.8.0.2/32"), s.AddPeer(new PeerSpec { PublicKey = k3 }).AllowedIPs);
    }

    [Fact]
    public void Dual_stack_server_allocates_one_address_of_each_family()
    {
        using var s = Start("10.8.0.1/24", "fd00:8::1/64");
        var p = s.AddPeer(new PeerSpec { PublicKey = NewKey() });
        Assert.Equal(Ips("10.8.0.2/32", "fd00:8::2/128"), p.AllowedIPs);
    }

    [Fact]
    public void Allocation_skips_addresses_given_explicitly_to_other_peers()
    {
        using var s = Start("10.8.0.1/24");
        s.AddPeer(new PeerSpec { PublicKey = NewKey(), AllowedIPs = Ips("10.8.0.2/32") });
        s.AddPeer(new PeerSpec { PublicKey = NewKey(), AllowedIPs = Ips("10.8.0.4/31") });
        Assert.Equal(Ips("10.8.0.3/32"), s.AddPeer(new PeerSpec { PublicKey = NewKey() }).AllowedIPs);
        Assert.Equal(Ips("10.8.0.6/32"), s.AddPeer(new PeerSpec { PublicKey = NewKey() }).AllowedIPs);
    }

    [Fact]
    public void Duplicate_key_is_AlreadyExists()
    {
        using var s = Start();
        var k = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = k });
        var e = Assert.Throws<WgException>(() => s.AddPeer(new PeerSpec { PublicKey = k }));
        Assert.Equal((WgErrorKind.AlreadyExists, "PeerAlreadyExists"), (e.Kind, e.ErrorId));
        Assert.Equal(1, s.PeerCount);
    }

    [Theory]
    [InlineData("10.9.0.0/24", "10.9.0.77/32")]
    [InlineData("10.9.0.77/32", "10.9.0.0/24")]
    [InlineData("10.9.0.0/24", "10.9.0.0/24")]
    [InlineData("172.16.0.0/12", "172.20.1.0/24")]
    [InlineData("fd01::/64", "fd01::5/128")]
    public void Overlapping_AllowedIPs_name_the_other_peer(string first, string second)
    {
        using var s = Start();
        var k1 = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = k1, AllowedIPs = Ips(first), Name = "alice" });
        var e = Assert.Throws<WgException>(() => s.AddPeer(new PeerSpec { PublicKey = NewKey(), AllowedIPs = Ips(second) }));
        Assert.Equal((WgErrorKind.InvalidArgument, "AllowedIPsOverlap"), (e.Kind, e.ErrorId));
        Assert.Contains("'alice'", e.Message);
        Assert.Contains(k1.ToBase64()[..8], e.Message);
        Assert.Equal(1, s.PeerCount);
    }

    [Fact]
    public void Disjoint_ranges_are_accepted()
    {
        using var s = Start();
        s.AddPeer(new PeerSpec { PublicKey = NewKey(), AllowedIPs = Ips("10.9.0.0/25") });
        s.AddPeer(new PeerSpec { PublicKey = NewKey(), AllowedIPs = Ips("10.9.0.128/25", "192.168.5.0/24") });
        Assert.Equal(2, s.PeerCount);
    }

    [Fact]
    public void AllowedIPs_covering_the_gateway_address_are_refused()
    {
        using var s = Start("10.8.0.1/24");
        var e = Assert.Throws<WgException>(() => s.AddPeer(new PeerSpec { PublicKey = NewKey(), AllowedIPs = Ips("10.8.0.0/24") }));
        Assert.Equal("AllowedIPsOverlap", e.ErrorId);
        Assert.Contains("gateway", e.Message);
        e = Assert.Throws<WgException>(() => s.AddPeer(new PeerSpec { PublicKey = NewKey(), AllowedIPs = Ips("10.8.0.1/32") }));
        Assert.Equal("AllowedIPsOverlap", e.ErrorId);
    }

    [Fact]
    public void Exhausted_pool_is_LimitExceeded_and_freeing_helps()
    {
        using var s = Start("10.8.0.1/30");
        var k = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = k });
        var e = Assert.Throws<WgException>(() => s.AddPeer(new PeerSpec { PublicKey = NewKey() }));
        Assert.Equal((WgErrorKind.LimitExceeded, "AddressPoolExhausted"), (e.Kind, e.ErrorId));
        s.RemovePeer(k);
        Assert.Equal(Ips("10.8.0.2/32"), s.AddPeer(new PeerSpec { PublicKey = NewKey() }).AllowedIPs);
    }

    [Fact]
    public void Backend_failure_rolls_back_the_allocation()
    {
        using var s = Start("10.8.0.1/24");
        _fake!.FailNextAdd = new InvalidOperationException("boom");
        Assert.Throws<InvalidOperationException>(() => s.AddPeer(new PeerSpec { PublicKey = NewKey() }));
        Assert.Equal(0, s.PeerCount);
        Assert.Equal(Ips("10.8.0.2/32"), s.AddPeer(new PeerSpec { PublicKey = NewKey() }).AllowedIPs);
    }

    [Fact]
    public void Update_changes_in_place_and_moves_addresses()
    {
        using var s = Start("10.8.0.1/24");
        var k = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = k, Name = "a" });                  // gets .2
        var other = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = other, AllowedIPs = Ips("10.9.0.0/24"), Name = "b" });
        var psk = NewKey();
        var p = s.UpdatePeer(k, new PeerUpdate { AllowedIPs = Ips("10.8.0.50/32"), Name = "renamed", PresharedKey = psk, PersistentKeepalive = 25 });
        Assert.Equal(Ips("10.8.0.50/32"), p.AllowedIPs);
        Assert.Equal("renamed", p.Name);
        Assert.True(p.HasPresharedKey);
        Assert.Equal(25, p.PersistentKeepalive);
        Assert.Contains("update " + k, _fake!.Calls);
        Assert.DoesNotContain("remove " + k, _fake.Calls);
        // .2 went back to the pool; the new .50 is taken.
        Assert.Equal(Ips("10.8.0.2/32"), s.AddPeer(new PeerSpec { PublicKey = NewKey() }).AllowedIPs);
        var e = Assert.Throws<WgException>(() => s.UpdatePeer(k, new PeerUpdate { AllowedIPs = Ips("10.9.0.9/32") }));
        Assert.Equal("AllowedIPsOverlap", e.ErrorId);
        Assert.Equal(Ips("10.8.0.50/32"), s.GetPeerInfo(k)!.AllowedIPs);   // unchanged after the refusal
        // Its own old range is not an overlap with itself.
        s.UpdatePeer(k, new PeerUpdate { AllowedIPs = Ips("10.8.0.50/32", "10.10.0.0/16") });
        var nf = Assert.Throws<WgException>(() => s.UpdatePeer(NewKey(), new PeerUpdate { Name = "x" }));
        Assert.Equal((WgErrorKind.NotFound, "PeerNotFound"), (nf.Kind, nf.ErrorId));
        Assert.Equal("renamed", s.UpdatePeer(k, new PeerUpdate { PersistentKeepalive = 0 }).Name);
        Assert.False(s.UpdatePeer(k, new PeerUpdate { ClearPresharedKey = true }).HasPresharedKey);
    }

    [Fact]
    public void Remove_unknown_is_false_and_GetPeerInfo_null()
    {
        using var s = Start();
        Assert.False(s.RemovePeer(NewKey()));
        Assert.Null(s.GetPeerInfo(NewKey()));
    }

    [Fact]
    public void Hundred_thousand_peers_stay_fast()
    {
        using var s = Start("10.0.0.1/8");
        var keys = new WgKey[100_000];
        var raw = new byte[32];
        for (int i = 0; i < keys.Length; i++) { Random.Shared.NextBytes(raw); keys[i] = new WgKey(raw); }
        var sw = Stopwatch.StartNew();
        foreach (var k in keys) s.AddPeer(new PeerSpec { PublicKey = k });
        for (int i = 0; i < keys.Length; i += 2) s.RemovePeer(keys[i]);
        for (int i = 0; i < 1000; i++) s.AddPeer(new PeerSpec { PublicKey = NewKey(), AllowedIPs = Ips($"172.16.{i / 250}.{i % 250}/32") });
        sw.Stop();
        Assert.Equal(51_000, s.PeerCount);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
        // Freed addresses are reused first: the next allocation is the lowest freed one (10.0.0.2).
        Assert.Equal(Ips("10.0.0.2/32"), s.AddPeer(new PeerSpec { PublicKey = NewKey() }).AllowedIPs);
    }

    [Fact]
    public void Concurrent_adds_get_distinct_addresses()
    {
        using var s = Start("10.8.0.1/20");
        var results = new System.Collections.Concurrent.ConcurrentBag<IpPrefix>();
        Parallel.For(0, 2000, _ => results.Add(s.AddPeer(new PeerSpec { PublicKey = NewKey() }).AllowedIPs[0]));
        Assert.Equal(2000, results.Distinct().Count());
        Assert.DoesNotContain(IpPrefix.Parse("10.8.0.1/32"), results);
    }
}
