using System.Text;
using System.Text.Json;
using WgEngine.Crypto;
using WgEngine.Noise;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Noise;

/// <summary>
/// The generic Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s vector (cacophony, via tests/vectors): the same
/// NoiseHandshake that WireGuard uses, with the vector's prologue and payloads.
/// </summary>
public class NoiseVectorTests
{
    private static JsonElement LoadVector() =>
        JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("noise-ikpsk2-25519-chachapoly-blake2s.json")))
            .RootElement.GetProperty("vectors")[0];

    private static byte[] Hex(JsonElement e, string name) => Convert.FromHexString(e.GetProperty(name).GetString()!);
    private static byte[] Hex(string s) => Convert.FromHexString(s);

    [Fact]
    public void HandshakeAndTransportMatchTheVector()
    {
        var v = LoadVector();
        string name = v.GetProperty("protocol_name").GetString()!;
        Assert.Equal(NoiseConstants.Construction, name);
        var prologue = Hex(v, "init_prologue");
        var psk = Convert.FromHexString(v.GetProperty("init_psks")[0].GetString()!);
        var iStatic = Hex(v, "init_static");
        var iEphemeral = Hex(v, "init_ephemeral");
        var rStatic = Hex(v, "resp_static");
        var rEphemeral = Hex(v, "resp_ephemeral");
        var messages = v.GetProperty("messages").EnumerateArray().ToArray();

        var iStaticPub = new byte[32]; X25519.PublicKey(iStatic, iStaticPub);
        var rStaticPub = new byte[32]; X25519.PublicKey(rStatic, rStaticPub);
        Assert.Equal(Hex(v, "init_remote_static"), rStaticPub);

        // Noise InitializeSymmetric + MixHash(prologue): ck = HASH(name), h = HASH(ck || prologue).
        var ck0 = new byte[32];
        Blake2s.Hash(Encoding.ASCII.GetBytes(name), ck0);
        var h0 = new byte[32];
        Blake2s.Hash(ck0, prologue, h0);

        var initiator = new NoiseHandshake();
        var responder = new NoiseHandshake();
        initiator.Initialize(ck0, h0, rStaticPub);
        responder.Initialize(ck0, h0, rStaticPub);

        // Message 1: -> e, es, s, ss (+ payload)
        var payload1 = Hex(messages[0].GetProperty("payload").GetString()!);
        var msg1 = new byte[NoiseHandshake.InitiationBodySize(payload1.Length)];
        Assert.True(initiator.WriteInitiation(iEphemeral, iStatic, iStaticPub, rStaticPub, payload1, msg1));
        Assert.Equal(Hex(messages[0].GetProperty("ciphertext").GetString()!), msg1);

        var re = new byte[32]; var rs = new byte[32]; var got1 = new byte[payload1.Length];
        Assert.True(responder.ReadInitiation(msg1, rStatic, re, rs, got1));
        Assert.Equal(payload1, got1);
        Assert.Equal(iStaticPub, rs);

        // Message 2: <- e, ee, se, psk (+ payload)
        var payload2 = Hex(messages[1].GetProperty("payload").GetString()!);
        var msg2 = new byte[NoiseHandshake.ResponseBodySize(payload2.Length)];
        Assert.True(responder.WriteResponse(rEphemeral, re, rs, psk, payload2, msg2));
        Assert.Equal(Hex(messages[1].GetProperty("ciphertext").GetString()!), msg2);

        var got2 = new byte[payload2.Length];
        Assert.True(initiator.ReadResponse(msg2, iEphemeral, iStatic, psk, got2));
        Assert.Equal(payload2, got2);

        Assert.Equal(Hex(v, "handshake_hash"), initiator.Hash.ToArray());
        Assert.Equal(Hex(v, "handshake_hash"), responder.Hash.ToArray());

        // Transport: messages alternate initiator -> responder, each direction counting from 0.
        var iSend = new byte[32]; var iRecv = new byte[32]; var rSend = new byte[32]; var rRecv = new byte[32];
        initiator.Split(true, iSend, iRecv);
        responder.Split(false, rSend, rRecv);
        ulong iCounter = 0, rCounter = 0;
        for (int m = 2; m < messages.Length; m++)
        {
            var payload = Hex(messages[m].GetProperty("payload").GetString()!);
            var expected = Hex(messages[m].GetProperty("ciphertext").GetString()!);
            bool fromInitiator = m % 2 == 0;
            var ct = new byte[payload.Length + 16];
            ulong n = fromInitiator ? iCounter++ : rCounter++;
            ChaChaPoly.Seal(fromInitiator ? iSend : rSend, n, payload, default, ct);
            Assert.Equal(expected, ct);
            var pt = new byte[payload.Length];
            Assert.True(ChaChaPoly.Open(fromInitiator ? rRecv : iRecv, n, ct, default, pt));
            Assert.Equal(payload, pt);
        }
    }

    [Fact]
    public void TamperedInitiationIsRejectedAndLeavesResponderStateUnchanged()
    {
        var v = LoadVector();
        var rStatic = Hex(v, "resp_static");
        var rStaticPub = new byte[32]; X25519.PublicKey(rStatic, rStaticPub);
        var iStatic = Hex(v, "init_static");
        var iStaticPub = new byte[32]; X25519.PublicKey(iStatic, iStaticPub);

        var initiator = new NoiseHandshake();
        initiator.InitializeWireGuard(rStaticPub);
        var body = new byte[NoiseHandshake.InitiationBodySize(12)];
        Assert.True(initiator.WriteInitiation(Hex(v, "init_ephemeral"), iStatic, iStaticPub, rStaticPub, new byte[12], body));

        var responder = new NoiseHandshake();
        responder.InitializeWireGuard(rStaticPub);
        var before = responder.Hash.ToArray();
        for (int i = 0; i < body.Length; i += 7)
        {
            var bad = (byte[])body.Clone();
            bad[i] ^= 0x01;
            Assert.False(responder.ReadInitiation(bad, rStatic, new byte[32], new byte[32], new byte[12]));
            Assert.Equal(before, responder.Hash.ToArray());
        }
        Assert.True(responder.ReadInitiation(body, rStatic, new byte[32], new byte[32], new byte[12]));
    }

    [Fact]
    public void WireGuardInitialValuesMatchTheProtocolSheet()
    {
        // C0 and H0 as published in PROTOCOL.md (whitepaper §5.4).
        Assert.Equal("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36", Convert.ToHexStringLower(NoiseConstants.InitialChainKey));
        Assert.Equal("2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3", Convert.ToHexStringLower(NoiseConstants.InitialHash));
    }

    private sealed class FixedStaticStatic(byte[]? secret) : IStaticStaticSource
    {
        public int Calls;
        public bool TryGetStaticStatic(ReadOnlySpan<byte> remoteStatic, Span<byte> sharedSecret)
        {
            Calls++;
            if (secret is null) return false;
            secret.CopyTo(sharedSecret);
            return true;
        }
    }

    [Fact]
    public void ResponderCanTakeTheStaticStaticDhFromACacheAndStopsForAnUnknownInitiator()
    {
        var rPriv = new byte[32]; X25519.GeneratePrivateKey(rPriv);
        var rPub = new byte[32]; X25519.PublicKey(rPriv, rPub);
        var iPriv = new byte[32]; X25519.GeneratePrivateKey(iPriv);
        var iPub = new byte[32]; X25519.PublicKey(iPriv, iPub);
        var ePriv = new byte[32]; X25519.GeneratePrivateKey(ePriv);
        var initiator = new NoiseHandshake();
        initiator.InitializeWireGuard(rPub);
        var body = new byte[NoiseHandshake.InitiationBodySize(12)];
        var ts = new byte[12]; ts[3] = 7;
        Assert.True(initiator.WriteInitiation(ePriv, iPriv, iPub, rPub, ts, body));

        var ss = new byte[32];
        Assert.True(X25519.SharedSecret(rPriv, iPub, ss));
        var known = new FixedStaticStatic(ss);
        var responder = new NoiseHandshake();
        responder.InitializeWireGuard(rPub);
        var got = new byte[12]; var rs = new byte[32];
        Assert.True(responder.ReadInitiation(body, rPriv, new byte[32], rs, got, known));
        Assert.Equal(ts, got);
        Assert.Equal(iPub, rs);
        Assert.Equal(1, known.Calls);
        Assert.Equal(initiator.Hash.ToArray(), responder.Hash.ToArray());

        var unknown = new FixedStaticStatic(null);
        var other = new NoiseHandshake();
        other.InitializeWireGuard(rPub);
        var before = other.Hash.ToArray();
        Assert.False(other.ReadInitiation(body, rPriv, new byte[32], new byte[32], new byte[12], unknown));
        Assert.Equal(1, unknown.Calls);
        Assert.Equal(before, other.Hash.ToArray());

        // A wrong cached secret fails authentication of the timestamp rather than yielding a session.
        var wrong = new FixedStaticStatic(new byte[32]);
        var third = new NoiseHandshake();
        third.InitializeWireGuard(rPub);
        Assert.False(third.ReadInitiation(body, rPriv, new byte[32], new byte[32], new byte[12], wrong));
    }
}
