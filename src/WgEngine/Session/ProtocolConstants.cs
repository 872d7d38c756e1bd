namespace WgEngine.Session;

/// <summary>Timer and counter limits from the whitepaper §6 (values as in wireguard-go device/constants.go).</summary>
internal static class ProtocolConstants
{
    public const ulong RekeyAfterMessages = 1UL << 60;
    public const ulong RejectAfterMessages = ulong.MaxValue - (1UL << 13); // 2^64 - 2^13 - 1
    public static readonly TimeSpan RekeyAfterTime = TimeSpan.FromSeconds(120);
    public static readonly TimeSpan RekeyAttemptTime = TimeSpan.FromSeconds(90);
    public static readonly TimeSpan RekeyTimeout = TimeSpan.FromSeconds(5);
    public const int RekeyTimeoutJitterMaxMs = 334;
    public static readonly TimeSpan RejectAfterTime = TimeSpan.FromSeconds(180);
    public static readonly TimeSpan KeepaliveTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan CookieRefreshTime = TimeSpan.FromSeconds(120);
    /// <summary>Minimum gap between two accepted initiations from one peer (wireguard-go: 50 per second).</summary>
    public static readonly TimeSpan HandshakeInitationRate = TimeSpan.FromMilliseconds(20);
    /// <summary>An initiator rekeys on receive when its current key is this old (RejectAfterTime - KeepaliveTimeout - RekeyTimeout).</summary>
    public static readonly TimeSpan RekeyOnReceiveAge = RejectAfterTime - KeepaliveTimeout - RekeyTimeout;
    /// <summary>All key material of a silent peer is erased after this long (3 x RejectAfterTime).</summary>
    public static readonly TimeSpan ZeroKeysAfter = RejectAfterTime * 3;
    public const int MaxStagedPackets = 128;
    /// <summary>RekeyAttemptTime / RekeyTimeout; retries stop once more than this many went unanswered.</summary>
    public const int MaxTimerHandshakes = 90 / 5;
}
