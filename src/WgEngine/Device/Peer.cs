using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using WgEngine.Crypto;
using WgEngine.Noise;
using WgEngine.Session;

namespace WgEngine.Device;

/// <summary>
/// One remote peer: its configuration, its handshake, its sessions (<see cref="Keypairs"/>), its timers
/// (<see cref="Timers"/>), endpoint and counters. The protocol state machine is <see cref="Session"/>
/// (Session/PeerSession); this type holds it with what the device adds (endpoint, policy, staging, sweep
/// membership, its entries in the index table).
/// Scale (100,000 mostly idle peers): what only a handshake or traffic needs (the Noise state, the
/// ephemeral keys, the cookie/MAC keys, the staging queue) is allocated on first use, so an idle peer
/// costs under 1 KB with its table entries (IdlePeerFootprintTests). Lazy members are created at most
/// once and never replaced.
/// </summary>
internal sealed class Peer : ISessionIndices
{
    private readonly TimeProvider _time;
    private readonly IndexTable _indices;

    public Peer(WgKey publicKey, TimeProvider time, int worker, IndexTable indices)
    {
        PublicKey = publicKey;
        _time = time;
        Worker = worker;
        _indices = indices;
        Session = new PeerSession(this);
    }

    public WgKey PublicKey { get; }
    public string? Name { get; set; }
    public int Worker { get; }

    // Preshared key: 32 zero bytes when none (whitepaper §5.2).
    public readonly byte[] PresharedKey = new byte[32];
    public bool HasPresharedKey;
    public int PersistentKeepaliveSeconds;
    public volatile SocketAddress? Endpoint;
    public volatile bool Removed;
    /// <summary>Its compiled access rules (own, then its tags'); null = none (see WgDevice.Policy.cs).</summary>
    public volatile Policy.PeerAcl? Acl;
    /// <summary>Its bandwidth limits; null = unlimited.</summary>
    public volatile Policy.PeerLimits? Limits;
    /// <summary>Quota bytes left (both directions); counted only while <see cref="QuotaLimited"/>.</summary>
    public long QuotaLeft;
    public long QuotaTotal;
    public volatile bool QuotaLimited;
    /// <summary>1 once the exhaustion was reported (Interlocked).</summary>
    public int QuotaReported;
    /// <summary>1 while the peer is on the timer sweep's list (WgDevice.Timers.cs); changed only with Interlocked.</summary>
    public int TimerListed;

    private CookieGenerator? _cookies;
    /// <summary>MAC keys for our handshake messages to this peer (two BLAKE2s hashes: derived on first use).</summary>
    public CookieGenerator Cookies
    {
        get
        {
            var c = Volatile.Read(ref _cookies);
            if (c is not null) return c;
            Interlocked.CompareExchange(ref _cookies, new CookieGenerator(PublicKey, _time), null);
            return _cookies!;
        }
    }

    /// <summary>Its protocol state: sessions, timers, handshake (Session.PeerSession).</summary>
    public readonly PeerSession Session;
    /// <summary>Its sessions: current, previous, next.</summary>
    public Keypairs<Keypair> Keypairs => Session.Keypairs;
    /// <summary>Its timer state and the events that move it.</summary>
    public PeerTimers Timers => Session.Timers;

    /// <summary>Packets waiting for a session (whitepaper: queued while the handshake completes).</summary>
    private ConcurrentQueue<PacketBuffer>? _staged;
    /// <summary>A ConcurrentQueue holds a 32-slot segment even when empty: created when the first packet waits.</summary>
    public ConcurrentQueue<PacketBuffer> Staged => LazyInitializer.EnsureInitialized(ref _staged);
    public int StagedCount;

    // Counters.
    public long ReceivedBytes;
    public long SentBytes;

    /// <summary>Takes a staged packet; false when none (also when nothing was ever staged).</summary>
    public bool TryTakeStaged(out PacketBuffer buffer)
    {
        var q = Volatile.Read(ref _staged);
        if (q is not null && q.TryDequeue(out buffer!)) return true;
        buffer = null!;
        return false;
    }

    // Its sessions' and handshake's entries in the device's receiver-index table (ISessionIndices).
    uint ISessionIndices.Reserve() => _indices.Add(new IndexEntry(this, null));
    void ISessionIndices.Bind(uint index, Keypair session) => _indices.Replace(index, new IndexEntry(this, session));
    void ISessionIndices.Release(uint index) => _indices.Remove(index);

    /// <summary>Whether the lazy handshake/staging state exists (tests: an idle peer has none).</summary>
    internal bool HasLazyState => Session.HasHandshakeState || _staged is not null || _cookies is not null;
}
