using WgEngine.Crypto;

namespace WgEngine.Noise;

/// <summary>
/// The sending side of the MACs, one per peer: writes mac1 (and mac2 when a fresh cookie is held)
/// into our outgoing handshake messages, and takes the cookie out of a cookie reply (whitepaper §5.4.7).
/// </summary>
internal sealed class CookieGenerator
{
    private readonly byte[] _mac1Key = new byte[32];
    private readonly byte[] _cookieKey = new byte[32];
    private readonly byte[] _cookie = new byte[16];
    private readonly byte[] _lastMac1 = new byte[16];
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private long _cookieSetAt;
    private bool _hasCookie;
    private bool _hasSentMac1;

    public CookieGenerator(WgKey remotePublic, TimeProvider time)
    {
        _time = time;
        Span<byte> pub = stackalloc byte[32];
        remotePublic.CopyTo(pub);
        CookieChecker.DeriveKeys(pub, _mac1Key, _cookieKey);
    }

    /// <summary>Fills the last 32 bytes of a handshake message: mac1, then mac2 or zeros.</summary>
    public void AddMacs(Span<byte> message)
    {
        var mac1 = message.Slice(message.Length - 32, 16);
        var mac2 = message[^16..];
        Blake2s.Mac(_mac1Key, message[..^32], mac1);
        lock (_lock)
        {
            mac1.CopyTo(_lastMac1);
            _hasSentMac1 = true;
            long age = _time.GetTimestamp() - _cookieSetAt;
            if (_hasCookie && age < (long)(CookieChecker.CookieRefreshTime.TotalSeconds * _time.TimestampFrequency))
                Blake2s.Mac(_cookie, message[..^16], mac2);
            else
                mac2.Clear();
        }
    }

    /// <summary>Decrypts a cookie reply to our last handshake message. False when it does not authenticate.</summary>
    public bool ConsumeReply(ReadOnlySpan<byte> reply)
    {
        if (reply.Length != MessageLayout.CookieReplySize) return false;
        Span<byte> cookie = stackalloc byte[16];
        lock (_lock)
        {
            if (!_hasSentMac1) return false;
            var nonce = reply.Slice(MessageLayout.CookieReplyNonceOffset, ChaChaPoly.XNonceSize);
            if (!ChaChaPoly.XOpen(_cookieKey, nonce, reply.Slice(MessageLayout.CookieReplyCookieOffset, 32), _lastMac1, cookie))
                return false;
            cookie.CopyTo(_cookie);
            _cookieSetAt = _time.GetTimestamp();
            _hasCookie = true;
            _hasSentMac1 = false; // one reply per sent message, as wireguard-go does
            return true;
        }
    }
}
