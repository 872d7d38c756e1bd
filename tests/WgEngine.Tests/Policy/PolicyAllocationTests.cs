using System.Net;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Egress;
using WgEngine.Net;
using WgEngine.Policy;
using static WgEngine.Tests.Policy.TrafficPolicyTests;

namespace WgEngine.Tests.Policy;

/// <summary>The per-packet decisions of the policies allocate nothing (measured on this thread).</summary>
public class PolicyAllocationTests
{
    [Fact]
    public void Acl_matching_flow_tracking_and_replies_allocate_nothing()
    {
        var policy = new TrafficPolicy(new FakeTimeProvider(), peerIsolation: true);
        var acl = policy.Compile([.. Enumerable.Range(0, 1000).SelectMany(i => AclRule.Parse($"deny 10.{i / 250}.{i % 250}.0/24 tcp 22")),
            .. AclRule.Parse("allow 10.8.0.3/32 tcp 443")], []);
        policy.Replaced(null, acl);
        var request = Tcp("10.8.0.2", "10.8.0.3", 40000, 443);
        var reply = Tcp("10.8.0.3", "10.8.0.2", 443, 40000);
        var refused = Tcp("10.8.0.3", "10.8.0.2", 5000, 22);
        for (int i = 0; i < 100; i++) { policy.Permits(acl, request, true); policy.Permits(null, reply, true); policy.Permits(null, refused, true); }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            Assert.True(policy.Permits(acl, request, true));
            Assert.True(policy.Permits(null, reply, true));
            Assert.False(policy.Permits(null, refused, true));
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Egress_rule_lookups_allocate_nothing()
    {
        using var policy = new EgressPolicy(new EgressRules([.. Enumerable.Range(0, 1000).Select(i => IpPrefix.Parse($"10.{i / 250}.{i % 250}.0/24"))],
            [IpPrefix.Parse("8.8.8.0/24")]), () => [IPAddress.Parse("192.0.2.1")]);
        byte[] v4 = [10, 3, 7, 1], v6 = IPAddress.Parse("2606:4700::1111").GetAddressBytes(), denied = [8, 8, 8, 8];
        for (int i = 0; i < 100; i++) policy.IsAllowed(v4);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            Assert.True(policy.IsAllowed(v4));
            Assert.True(policy.IsAllowed(v6));
            Assert.False(policy.IsAllowed(denied));
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
