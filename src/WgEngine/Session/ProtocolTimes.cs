
namespace WgEngine.Session;

/// <summary>
/// The whitepaper's §6 intervals in the clock's own ticks (TimeProvider.GetTimestamp units), computed once
/// per device, so that the per-peer timers compare plain numbers.
/// </summary>
internal readonly struct ProtocolTimes
{
    public ProtocolTimes(long frequency)
    {
        Frequency = frequency;
        RekeyAfterTime = Ticks(ProtocolConstants.RekeyAfterTime);
        RejectAfterTime = Ticks(ProtocolConstants.RejectAfterTime);
        RekeyTimeout = Ticks(ProtocolConstants.RekeyTimeout);
        KeepaliveTimeout = Ticks(ProtocolConstants.KeepaliveTimeout);
        RekeyOnReceiveAge = Ticks(ProtocolConstants.RekeyOnReceiveAge);
        ZeroKeysAfter = Ticks(ProtocolConstants.ZeroKeysAfter);
        InitiationRate = Ticks(ProtocolConstants.HandshakeInitationRate);
    }

    public long Frequency { get; }
    /// <summary>Rekey-After-Time (120 s): the initiator starts a new handshake when sending on an older session.</summary>
    public long RekeyAfterTime { get; }
    /// <summary>Reject-After-Time (180 s): a session this old neither sends nor receives.</summary>
    public long RejectAfterTime { get; }
    /// <summary>Rekey-Timeout (5 s): initiation retransmission, and the least gap between two initiations.</summary>
    public long RekeyTimeout { get; }
    /// <summary>Keepalive-Timeout (10 s): a passive keepalive is owed this long after data arrived.</summary>
    public long KeepaliveTimeout { get; }
    /// <summary>Reject-After-Time - Keepalive-Timeout - Rekey-Timeout: the initiator's last-minute rekey on receive.</summary>
    public long RekeyOnReceiveAge { get; }
    /// <summary>3 x Reject-After-Time: every key of a silent peer is erased.</summary>
    public long ZeroKeysAfter { get; }
    /// <summary>The least gap between two accepted initiations from one peer (20 ms).</summary>
    public long InitiationRate { get; }

    public long Ticks(TimeSpan t) => (long)(t.TotalSeconds * Frequency);
    public long Seconds(int seconds) => seconds * Frequency;
}
