using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgEngine.Tests.Gateway;

/// <summary>VPNServer.PeerEvent: every life-cycle change once, in order, and never waiting for a handler.</summary>
public sealed class PeerEventTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static VPNServer Start(TimeProvider? time = null) => VPNServer.Start(new ServerOptions
    {
        ListenPort = 0,
        Addresses = [IpPrefix.Parse("10.8.0.1/24")],
        BackendFactory = c => new FakeBackend(c),
        TimeProvider = time ?? TimeProvider.System,
    });

    private static WgKey NewKey()
    {
        using var k = WgPrivateKey.Generate();
        return k.PublicKey;
    }

    [Fact]
    public void Changes_raise_their_events_in_order_with_the_peer_after_the_change()
    {
        using var s = Start();
        var seen = new BlockingCollection<PeerEventArgs>();
        s.PeerEvent += seen.Add;
        var key = NewKey();
        var other = NewKey();
        var sentinel = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = key, Name = "a" });
        s.AddPeer(new PeerSpec { PublicKey = other });
        Assert.True(s.DisablePeer(key));
        Assert.False(s.DisablePeer(key));           // already disabled: no second event
        Assert.True(s.EnablePeer(key));
        Assert.True(s.RemovePeer(key));
        s.AddPeer(new PeerSpec { PublicKey = sentinel });
        var got = new List<(PeerEventKind, WgKey, bool)>();
        for (int i = 0; i < 6; i++)
        {
            Assert.True(seen.TryTake(out var e, Wait), $"event {i + 1} of 6 did not arrive");
            got.Add((e.Kind, e.Peer.PublicKey, e.Peer.Enabled));
            Assert.Equal(s.Name, e.Server);
        }
        // In order, and the no-op disable raised nothing: the sentinel's event comes right after the removal.
        Assert.Equal([(PeerEventKind.Created, key, true), (PeerEventKind.Created, other, true), (PeerEventKind.Disabled, key, false),
            (PeerEventKind.Enabled, key, true), (PeerEventKind.Removed, key, true), (PeerEventKind.Created, sentinel, true)], got);
    }

    [Fact]
    public void A_blocked_handler_holds_up_neither_the_engine_nor_other_changes()
    {
        using var s = Start();
        using var release = new ManualResetEventSlim();
        var count = 0;
        s.PeerEvent += _ => { Interlocked.Increment(ref count); release.Wait(Wait); };
        for (int i = 0; i < 50; i++) s.AddPeer(new PeerSpec { PublicKey = NewKey() });   // returns while the handler blocks
        Assert.Equal(50, s.PeerCount);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref count) == 1, Wait));
        Assert.Equal(1, Volatile.Read(ref count));                 // the first event waits in the handler...
        release.Set();
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref count) == 50, Wait));   // ...and the rest follow
    }

    [Fact]
    public void A_failing_handler_does_not_stop_the_others()
    {
        using var s = Start();
        var seen = new BlockingCollection<PeerEventArgs>();
        s.PeerEvent += _ => throw new InvalidOperationException("a front end's bug");
        s.PeerEvent += seen.Add;
        s.AddPeer(new PeerSpec { PublicKey = NewKey() });
        s.AddPeer(new PeerSpec { PublicKey = NewKey() });
        Assert.True(seen.TryTake(out _, Wait));
        Assert.True(seen.TryTake(out _, Wait));
    }

    [Fact]
    public void Expiry_raises_Expired_when_the_time_comes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2030-01-01T00:00:00Z"));
        using var s = Start(time);
        var seen = new BlockingCollection<PeerEventArgs>();
        s.PeerEvent += seen.Add;
        var key = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = key, ExpiresAt = time.GetUtcNow().AddMinutes(5) });
        Assert.True(seen.TryTake(out var created, Wait));
        Assert.Equal(PeerEventKind.Created, created.Kind);
        time.Advance(TimeSpan.FromMinutes(4));
        var sentinel = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = sentinel });   // events are ordered: no Expired may come before this one
        Assert.True(seen.TryTake(out var next, Wait));
        Assert.Equal((PeerEventKind.Created, sentinel), (next.Kind, next.Peer.PublicKey));
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(seen.TryTake(out var expired, Wait));
        Assert.Equal(PeerEventKind.Expired, expired.Kind);
        Assert.Equal(key, expired.Peer.PublicKey);
        Assert.False(expired.Peer.Enabled);
        Assert.Equal(time.GetUtcNow(), expired.Time);
    }
}
