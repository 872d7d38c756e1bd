using WgEngine.Session;

namespace WgEngine.Device;

/// <summary>
/// Consecutive transport packets of one keypair that a crypto worker took from its queue together (issue 15 item
/// 3, the receive side): their AEAD open is shared with the device's <see cref="CryptoHelperPool"/>, then the worker
/// accepts each in queue order (replay window, confirmation, timers, counters, routing) exactly as it does a single
/// packet. Opening is pure (<see cref="PeerSession.Open"/>: the key and the packet in, the plaintext and a verdict
/// out), so a forged packet fails only its own slot and a replayed counter is still refused, by the in-order accept.
/// One per worker, made once; never shared except with the helpers during <see cref="CryptoHelperPool.OpenAll"/>.
/// </summary>
internal sealed class IncomingRun : IRangeJob
{
    /// <summary>At most this many packets per run: a 64 KiB GRO'd receive at MTU 1420 is 44-46 of them, the same
    /// bound as an outgoing batch (<see cref="OutgoingBatch.Size"/>).</summary>
    public const int Size = OutgoingBatch.Size;

    public readonly PacketBuffer[] Buffers = new PacketBuffer[Size];
    /// <summary>Per slot, once opened: whether the tag verified, and the plaintext's length.</summary>
    public readonly bool[] Authentic = new bool[Size];
    public readonly int[] PlaintextLength = new int[Size];
    public int Count;
    /// <summary>Slots already handed on (accepted, dropped or routed): a failure part-way returns only the others.</summary>
    public int Handed;

    /// <summary>The keypair every packet of the run arrived on (set by the first).</summary>
    public Keypair? Keypair => Count == 0 ? null : Buffers[0].Keypair;

    public bool IsFull => Count == Size;

    /// <summary>Whether <paramref name="next"/> may join the run: same keypair (hence same peer) as the first.</summary>
    public bool Takes(PacketBuffer next) => Count < Size && ReferenceEquals(next.Keypair, Buffers[0].Keypair);

    public void Add(PacketBuffer buf) => Buffers[Count++] = buf;

    /// <summary>Opens slots [from, to) in their own buffers; any thread, ranges must not overlap.</summary>
    public void Run(int from, int to)
    {
        for (int i = from; i < to; i++)
        {
            var buf = Buffers[i];
            Authentic[i] = PeerSession.Open(buf.Keypair!, buf.Data.AsSpan(0, buf.Length), out PlaintextLength[i]);
        }
    }

    /// <summary>Forgets the run's references (its buffers were handed on).</summary>
    public void Clear()
    {
        Array.Clear(Buffers, 0, Count);
        Count = 0;
        Handed = 0;
    }
}
