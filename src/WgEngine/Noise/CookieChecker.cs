using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using WgEngine.Crypto;

namespace WgEngine.Noise;

/// <summary>
/// The receiving side of WireGuard's DoS protection (whitepaper §5.4.4, §5.4.7): checks mac1 on every
/// handshake message before any expensive work, checks mac2 under load, and builds cookie replies.
/// The cookie secret is random and replaced every Cookie-Refresh-Time (120 s).
/// </summary>
internal sealed class CookieChecker
{
    public static readonly TimeSpan CookieRefreshTime = TimeSpan.FromSeconds(120);

    private readonly byte[] _mac1Key = new byte[32];
    private readonly byte[] _cookieKey = new byte[32];
    private readonly byte[] _secret = new byte[32];
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private long _secretSetAt = long.MinValue;

    public CookieChecker(WgKey localPublic, TimeProvider time)
    {
        _time = time;
        Span<byte> pub = stackalloc byte[32];
        localPublic.CopyTo(pub);
        DeriveKeys(pub, _mac1Key, _cookieKey);
    }

    /// <summary>mac1 key = HASH(LABEL_MAC1 || pub), cookie key = HASH(LABEL_COOKIE || pub).</summary>
    internal static void DeriveKeys(ReadOnlySpan<byte> publicKey, Span<byte> mac1Key, Span<byte> cookieKey)
    {
        Blake2s.Hash(Encoding.ASCII.GetBytes(NoiseConstants.LabelMac1), publicKey, mac1Key);
        Blake2s.Hash(Encoding.ASCII.GetBytes(NoiseConstants.LabelCookie), publicKey, cookieKey);
    }

    /// <summary>True when mac1 (the 16 bytes at length-32) is right for this responder.</summary>
    public bool CheckMac1(ReadOnlySpan<byte> message)
    {
        if (message.Length < 32) return false;
        Span<byte> mac = stackalloc byte[16];
        Blake2s.Mac(_mac1Key, message[..^32], mac);
        return ConstantTime.Equals(mac, message.Slice(message.Length - 32, 16));
    }

    /// <summary>True when mac2 (the last 16 bytes) carries a cookie we gave this source within the last 120 s.</summary>
    public bool CheckMac2(ReadOnlySpan<byte> message, SocketAddress source)
    {
        if (message.Length < 32) return false;
        Span<byte> cookie = stackalloc byte[16];
        lock (_lock)
        {
            if (_time.GetTimestamp() - _secretSetAt > (long)(CookieRefreshTime.TotalSeconds * _time.TimestampFrequency) || _secretSetAt == long.MinValue)
                return false;
            MakeCookie(source, cookie);
        }
        Span<byte> mac = stackalloc byte[16];
        Blake2s.Mac(cookie, message[..^16], mac);
        return ConstantTime.Equals(mac, message[^16..]);
    }

    /// <summary>
    /// Builds a cookie reply (type 3, 64 bytes) to a handshake message whose sender index is
    /// <paramref name="senderIndex"/>: XAEAD(cookie key, random nonce, cookie, aad = the message's mac1).
    /// </summary>
    public void CreateReply(ReadOnlySpan<byte> message, uint senderIndex, SocketAddress source, Span<byte> reply)
    {
        Span<byte> cookie = stackalloc byte[16];
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            if (_secretSetAt == long.MinValue || now - _secretSetAt > (long)(CookieRefreshTime.TotalSeconds * _time.TimestampFrequency))
            {
                Sodium.RandomBytes(_secret);
                _secretSetAt = now;
            }
            MakeCookie(source, cookie);
        }
        reply[..MessageLayout.CookieReplySize].Clear();
        reply[0] = MessageLayout.TypeCookieReply;
        BinaryPrimitives.WriteUInt32LittleEndian(reply[MessageLayout.CookieReplyReceiverOffset..], senderIndex);
        var nonce = reply.Slice(MessageLayout.CookieReplyNonceOffset, ChaChaPoly.XNonceSize);
        Sodium.RandomBytes(nonce);
        var mac1 = message.Slice(message.Length - 32, 16);
        ChaChaPoly.XSeal(_cookieKey, nonce, cookie, mac1, reply.Slice(MessageLayout.CookieReplyCookieOffset, 32));
    }

    // Cookie = MAC(secret, source IP bytes || source port). Only this responder ever recomputes it,
    // so the exact byte form of the address is ours to choose.
    private void MakeCookie(SocketAddress source, Span<byte> cookie)
    {
        Span<byte> addr = stackalloc byte[18];
        int n = WriteAddressBytes(source, addr);
        Blake2s.Mac(_secret, addr[..n], cookie);
    }

    internal static int WriteAddressBytes(SocketAddress source, Span<byte> destination)
    {
        // sockaddr_in / sockaddr_in6 layout: family(2) port(2, big-endian) then the address.
        var buf = source.Buffer.Span;
        if (source.Family == AddressFamily.InterNetwork)
        {
            buf.Slice(4, 4).CopyTo(destination);
            buf.Slice(2, 2).CopyTo(destination[4..]);
            return 6;
        }
        buf.Slice(8, 16).CopyTo(destination);
        buf.Slice(2, 2).CopyTo(destination[16..]);
        return 18;
    }
}
