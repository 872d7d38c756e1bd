using WgEngine.Session;

namespace WgEngine.Tests.Session;

/// <summary>The session rotation of whitepaper §5.4.6, written once in Keypairs: each step and what it retires.</summary>
public sealed class KeypairsTests
{
    private sealed record S(string Name);

    [Fact]
    public void The_initiator_uses_its_new_session_at_once_and_keeps_the_old_as_previous()
    {
        var k = new Keypairs<S>();
        S a = new("a"), b = new("b"), c = new("c");
        Assert.Equal(0, k.UseAsInitiator(a).Count);
        var retired = k.UseAsInitiator(b);
        Assert.Equal(0, retired.Count);
        Assert.Same(b, k.Current);
        Assert.Same(a, k.Previous);
        retired = k.UseAsInitiator(c);
        Assert.True(retired.Contains(a) && retired.Count == 1);
        Assert.Same(c, k.Current);
        Assert.Same(b, k.Previous);
    }

    [Fact]
    public void The_responder_waits_in_next_until_the_initiator_sends_on_it()
    {
        var k = new Keypairs<S>();
        S old = new("old"), prev = new("prev"), fresh = new("fresh");
        k.UseAsInitiator(prev);
        k.UseAsInitiator(old);
        var retired = k.StageAsResponder(fresh);
        Assert.True(retired.Contains(prev) && retired.Count == 1);
        Assert.Same(old, k.Current);            // still sending on the old session
        Assert.Null(k.Previous);
        Assert.Same(fresh, k.Next);

        Assert.False(k.TryConfirm(old, out _));
        Assert.True(k.TryConfirm(fresh, out retired));
        Assert.Equal(0, retired.Count);
        Assert.Same(fresh, k.Current);
        Assert.Same(old, k.Previous);
        Assert.Null(k.Next);
        Assert.False(k.TryConfirm(fresh, out _));   // only once
    }

    [Fact]
    public void An_initiator_with_a_pending_next_retires_both_current_and_previous()
    {
        var k = new Keypairs<S>();
        S cur = new("cur"), next = new("next"), mine = new("mine");
        k.UseAsInitiator(cur);
        k.StageAsResponder(next);
        var retired = k.UseAsInitiator(mine);
        Assert.True(retired.Contains(cur));
        Assert.Same(mine, k.Current);
        Assert.Same(next, k.Previous);
        Assert.Null(k.Next);

        retired = k.Clear();
        Assert.Equal(2, retired.Count);
        Assert.True(k.IsEmpty);
    }
}
