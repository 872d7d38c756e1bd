using WgEngine.Noise;

namespace WgEngine.Session;

/// <summary>Where the peer's own handshake stands. The responder keeps no state between the initiation and
/// its response (it answers in one step), so only the initiator's in-flight state exists.</summary>
internal enum HandshakeState { Zeroed, InitiationCreated }

/// <summary>
/// One peer's WireGuard protocol state, without I/O, threads or a clock: its sessions (<see cref="Keypairs"/>),
/// its timers (<see cref="Timers"/>) and its handshake. A peer's whole life reads here and in the two other
/// parts of this type: the handshake messages it creates and consumes (PeerSession.Handshake.cs), and the
/// transport messages it opens and seals (PeerSession.Transport.cs). Every operation takes the time as a
/// number and returns what the device must do (send these bytes, deliver this packet, drop with this reason);
/// the device keeps the sockets, the threads, the buffer pool and the batching.
/// <para>Handshake state is guarded by <see cref="Lock"/>, which the caller holds around the handshake
/// operations and the timer tick, so that the state, the index table and the timers change together.
/// Transport operations take no lock. What only a handshake needs (the Noise state, the ephemeral key) is
/// allocated on first use: an idle peer of a 100,000-peer gateway carries none of it.</para>
/// </summary>
internal sealed partial class PeerSession(ISessionIndices indices)
{
    private readonly ISessionIndices _indices = indices;

    /// <summary>Guards the handshake state (see the remarks on the type).</summary>
    public readonly object Lock = new();

    /// <summary>Its sessions: current, previous, next.</summary>
    public readonly Keypairs<Keypair> Keypairs = new();

    /// <summary>Its timer state and the events that move it.</summary>
    public readonly PeerTimers Timers = new();

    private NoiseHandshake? _noise;
    private byte[]? _localEphemeral;
    private volatile HandshakeState _state;
    private uint _handshakeIndex;
    // The greatest TAI64N of an initiation accepted from the peer (replay protection, whitepaper §5.1).
    private readonly byte[] _lastTimestamp = new byte[12];

    /// <summary>DH(our static, its static), computed at its first initiation (wireguard-go's
    /// precomputedStaticStatic); null until then or after our key changed.</summary>
    public volatile byte[]? StaticStatic;

    private NoiseHandshake Noise => _noise ??= new NoiseHandshake();
    private byte[] LocalEphemeral => _localEphemeral ??= new byte[32];

    /// <summary>Our initiation awaits its response (read without the lock by the idle check).</summary>
    public bool InitiationInFlight => _state == HandshakeState.InitiationCreated;

    /// <summary>Any key material exists: a session or a handshake in flight.</summary>
    public bool HasKeys => !Keypairs.IsEmpty || InitiationInFlight;

    /// <summary>Whether the lazily made handshake state exists (tests: an idle peer has none).</summary>
    internal bool HasHandshakeState => _noise is not null || _localEphemeral is not null;

    /// <summary>What the peer's timers ask for at <paramref name="now"/> (caller holds <see cref="Lock"/>). A
    /// handshake given up is already abandoned when this returns; the device drops what was staged.</summary>
    public TimerAction Tick(long now, int persistentKeepaliveSeconds, bool hasEndpoint, in ProtocolTimes times)
    {
        var inputs = new TimerInputs(
            InitiationInFlight: InitiationInFlight,
            HasCurrentSession: Keypairs.Current is not null,
            HasKeys: HasKeys,
            PersistentKeepaliveSeconds: persistentKeepaliveSeconds,
            HasEndpoint: hasEndpoint);
        var action = Timers.Tick(now, inputs, times);
        // Like wireguard-go and the kernel: after 20 unanswered initiations (~90-100 s) the attempt ends.
        if (action == TimerAction.GiveUpHandshake) AbandonHandshake();
        return action;
    }

    /// <summary>Erases every key: the sessions and any handshake in flight (key erasure after 3 x
    /// Reject-After-Time, a removed peer, a changed key). Takes <see cref="Lock"/>.</summary>
    public void EraseKeys()
    {
        lock (Lock) AbandonHandshake();
        Erase(Keypairs.Clear());
    }

    /// <summary>Our static key changed: what the peer's earlier initiations taught us is void. Its old
    /// timestamp would refuse a prompt re-handshake within the same TAI64N step, and the static-static DH
    /// belongs to the old key. Takes <see cref="Lock"/>.</summary>
    public void ForgetRemoteHistory()
    {
        lock (Lock)
        {
            StaticStatic = null;
            Array.Clear(_lastTimestamp);
            Timers.ResetInitiationRate();
        }
    }

    /// <summary>Ends the initiation in flight, if any, and erases its secrets (caller holds <see cref="Lock"/>).</summary>
    private void AbandonHandshake()
    {
        if (_state != HandshakeState.Zeroed) _indices.Release(_handshakeIndex);
        _state = HandshakeState.Zeroed;
        ClearHandshakeSecrets();
    }

    private void ClearHandshakeSecrets()
    {
        _noise?.Clear();
        if (_localEphemeral is { } e) Array.Clear(e);
    }

    /// <summary>Unregisters and erases the sessions a rotation retired.</summary>
    private void Erase(in Retired<Keypair> retired)
    {
        for (int i = 0; i < 3; i++)
        {
            if (retired[i] is not { } kp) continue;
            _indices.Release(kp.LocalIndex);
            kp.Zero();
        }
    }

    /// <summary>Tests: the ephemeral key's storage, to see that erasure reaches it.</summary>
    internal Span<byte> EphemeralKeyForTests => LocalEphemeral;

    /// <summary>Fuzzing: puts an initiation of ours in flight from a recorded state, so every input meets the same
    /// handshake (caller holds <see cref="Lock"/>).</summary>
    internal void RestoreInitiationInFlight(NoiseHandshake recorded, ReadOnlySpan<byte> ephemeral, uint index)
    {
        Noise.CopyFrom(recorded);
        ephemeral.CopyTo(LocalEphemeral);
        _handshakeIndex = index;
        _state = HandshakeState.InitiationCreated;
    }

    /// <summary>Fuzzing: back to a peer that never shook hands (caller holds <see cref="Lock"/>; sessions are
    /// the caller's to clear).</summary>
    internal void ResetHandshake()
    {
        AbandonHandshake();
        Array.Clear(_lastTimestamp);
        Timers.Reset();
    }
}
