using System.Buffers.Binary;
using WgEngine.Crypto;
using WgEngine.Noise;

namespace Flood;

/// <summary>Crafts real handshake initiations (Noise IKpsk2, valid mac1) for a responder's public key.</summary>
internal static class Initiations
{
    /// <summary>A fresh random static key pair (private, public).</summary>
    public static (byte[] Private, byte[] Public) NewKeyPair()
    {
        var priv = new byte[32];
        var pub = new byte[32];
        X25519.GeneratePrivateKey(priv);
        X25519.PublicKey(priv, pub);
        return (priv, pub);
    }

    /// <summary>
    /// One initiation from <paramref name="staticPrivate"/> to <paramref name="responder"/>, timestamped
    /// <paramref name="time"/>, with a valid mac1 and no mac2 (the flooder never learns a cookie).
    /// </summary>
    public static byte[] Create(ReadOnlySpan<byte> responder, byte[] staticPrivate, byte[] staticPublic, DateTimeOffset time, uint senderIndex)
    {
        var msg = new byte[MessageLayout.InitiationSize];
        msg[0] = MessageLayout.TypeInitiation;
        BinaryPrimitives.WriteUInt32LittleEndian(msg.AsSpan(MessageLayout.InitiationSenderOffset), senderIndex);
        Span<byte> ephemeral = stackalloc byte[32];
        X25519.GeneratePrivateKey(ephemeral);
        Span<byte> timestamp = stackalloc byte[12];
        Tai64N.Write(time, timestamp);
        var noise = new NoiseHandshake();
        noise.InitializeWireGuard(responder);
        if (!noise.WriteInitiation(ephemeral, staticPrivate, staticPublic, responder, timestamp,
                msg.AsSpan(MessageLayout.InitiationBodyOffset, MessageLayout.InitiationBodySize)))
            throw new InvalidOperationException("could not build an initiation (degenerate key)");
        new CookieGenerator(new WgKey(responder), TimeProvider.System).AddMacs(msg);
        return msg;
    }
}
