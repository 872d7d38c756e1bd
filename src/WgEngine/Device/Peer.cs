using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using WgEngine.Crypto;
using WgEngine.Noise;

namespace WgEngine.Device;

internal enum HandshakeState { Zeroed, InitiationCreated, InitiationConsumed, ResponseCreated }

/// <summary>
/// One remote peer: its configuration, its handshake, its keypairs (current / previous / next, as the
/// kernel and wireguard-go keep them), endpoint, counters and timer timestamps. Timestamps are
/// TimeProvider ticks (GetTimestamp); 0 means never.
/// </summary>
internal sealed class Peer
{
    public Peer(WgKey publicKey, TimeProvider time, int worker)
    {
        PublicKey = publicKey;
        Cookies = new CookieGenerator(publicKey, time);
        Worker = worker;
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

    public readonly CookieGenerator Cookies;

    // Handshake state: guarded by HandshakeLock.
    public readonly object HandshakeLock = new();
    public readonly NoiseHandshake Noise = new();
    public HandshakeState State;
    public readonly byte[] LocalEphemeral = new byte[32];
    public readonly byte[] RemoteEphemeral = new byte[32];
    public uint HandshakeLocalIndex;
    public uint HandshakeRemoteIndex;
    public readonly byte[] LastTimestamp = new byte[12];
    /// <summary>DH(our static, its static), computed at its first initiation; null until then or after our key changes.</summary>
    public volatile byte[]? StaticStatic;
    public long LastInitiationConsumedAt;
    public long LastInitiationSentAt;
    public int HandshakeAttempts;
    public long RetransmitAt;

    // Keypairs: swapped under KeypairLock, read lock-free.
    public readonly object KeypairLock = new();
    public volatile Keypair? Current;
    public volatile Keypair? Previous;
    public volatile Keypair? Next;

    /// <summary>Packets waiting for a session (whitepaper: queued while the handshake completes).</summary>
    public readonly ConcurrentQueue<PacketBuffer> Staged = new();
    public int StagedCount;

    // Counters and timer inputs (see WgDevice.Timers.cs for the events that set them).
    public long ReceivedBytes;
    public long SentBytes;
    public long LastHandshakeUnixMs;     // wall clock of the last completed (confirmed) handshake
    public long SessionDerivedAt;        // TimeProvider ticks of the last keys derived (erasure clock)
    public long LastSentAt;              // any authenticated packet sent
    public long LastReceivedAt;          // any authenticated packet received
    /// <summary>First data received since we last sent anything: a keepalive is owed 10 s later (0 = none).</summary>
    public long KeepaliveOwedSince;
    /// <summary>First data sent since we last heard anything: a new handshake is due 15 s later (0 = none).</summary>
    public long UnansweredSince;
    /// <summary>The initiator's one handshake when receiving on a key near Reject-After-Time.</summary>
    public volatile bool SentLastMinuteHandshake;
}
