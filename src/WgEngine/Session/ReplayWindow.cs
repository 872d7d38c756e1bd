using System.Runtime.CompilerServices;

namespace WgEngine.Session;

/// <summary>
/// Sliding-window replay filter for the receive counter of one keypair, with the window geometry of
/// the Linux kernel's drivers/net/wireguard/receive.c (counter_validate): an 8192-bit ring of 64-bit
/// words, of which 8192 - 64 = 8128 counters behind the newest are acceptable.
/// <para>This is a mutable struct (1 KiB of bitmap inline, no allocation): keep it in a non-readonly
/// field of its owner and call it through that field (or a <c>ref</c>); a copy is a separate window.
/// <c>default(ReplayWindow)</c> is a fresh window.</para>
/// <para>Not thread-safe: the caller serialises all calls for one keypair (e.g. under the keypair's
/// receive lock). Check a counter only after the packet's AEAD tag has verified.</para>
/// </summary>
internal struct ReplayWindow
{
    /// <summary>Counters at or above this are never accepted (2^64 - 2^13 - 1, the WireGuard paper's
    /// Reject-After-Messages).</summary>
    public const ulong RejectAfterMessages = ulong.MaxValue - (1UL << 13);

    private const int WordBits = 64;
    private const int BitsTotal = 8192;                 // kernel COUNTER_BITS_TOTAL
    private const int Words = BitsTotal / WordBits;     // 128
    /// <summary>How far behind the newest accepted counter a counter may be (kernel COUNTER_WINDOW_SIZE).</summary>
    public const int WindowSize = BitsTotal - WordBits; // 8128

    [InlineArray(Words)]
    private struct Bitmap { private ulong _word; }

    // Newest accepted counter plus one (0 = nothing accepted yet); bit (c + 1) marks counter c.
    private ulong _next;
    private Bitmap _seen;

    /// <summary>Returns true the first time a fresh counter is seen; false for a replay, a counter that
    /// has fallen out of the window, or one at or above <see cref="RejectAfterMessages"/>.</summary>
    public bool TryAccept(ulong counter)
    {
        if (counter >= RejectAfterMessages) return false;
        ulong shifted = counter + 1;
        if (shifted + WindowSize < _next) return false; // too old

        ulong word = shifted / WordBits;
        if (shifted > _next)
        {
            // Moving forward: zero the words that the ring reuses for the new counters (at most all).
            ulong current = _next / WordBits;
            ulong advance = Math.Min(word - current, Words);
            for (ulong i = 1; i <= advance; i++)
                _seen[(int)((current + i) % Words)] = 0;
            _next = shifted;
        }

        ref ulong slot = ref _seen[(int)(word % Words)];
        ulong bit = 1UL << (int)(shifted % WordBits);
        if ((slot & bit) != 0) return false;
        slot |= bit;
        return true;
    }

    /// <summary>Forgets every counter seen (for a fresh keypair).</summary>
    public void Reset()
    {
        _next = 0;
        ((Span<ulong>)_seen).Clear();
    }
}
