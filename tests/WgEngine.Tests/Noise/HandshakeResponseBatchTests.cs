using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Noise;

namespace WgEngine.Tests.Noise;

/// <summary>
/// The handshake thread holds its responses back and sends them in batches (when its queue is empty or
/// 8 are waiting): a burst of initiations must still get every response, each to its own initiation,
/// none stuck in a half-full batch.
/// </summary>
public class HandshakeResponseBatchTests
{
    [Fact]
    public void BurstOfInitiationsFromManyPeersIsAnsweredInFull()
    {
        const int peers = 21; // two full batches of 8 and a partial one, whatever the queue does
        var gwKey = WgPrivateKey.Generate();
        Span<byte> gwPub = stackalloc byte[32];
        gwKey.PublicKey.CopyTo(gwPub);
        using var device = new WgDevice(gwKey, new UdpBind(0, IPAddress.Loopback), new DeviceOptions { Workers = 1 });
        var messages = new byte[peers][];
        for (int i = 0; i < peers; i++)
        {
            var priv = new byte[32];
            var pub = new byte[32];
            X25519.GeneratePrivateKey(priv);
            X25519.PublicKey(priv, pub);
            device.AddPeer(new PeerConfig { PublicKey = new WgKey(pub), AllowedIPs = [IpPrefix.Parse($"10.9.0.{i + 1}/32")] });
            messages[i] = Initiation(gwPub, priv, pub, senderIndex: 1000u + (uint)i);
        }
        device.Start();

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.ReceiveTimeout = 10_000;
        var to = new IPEndPoint(IPAddress.Loopback, device.ListenPort);
        foreach (var m in messages) socket.SendTo(m, to);

        var answered = new HashSet<uint>();
        var buf = new byte[256];
        while (answered.Count < peers)
        {
            int n = socket.Receive(buf); // throws after 10 s without a datagram: a response left unsent
            Assert.Equal(MessageLayout.ResponseSize, n);
            Assert.Equal(MessageLayout.TypeResponse, buf[0]);
            uint receiver = BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(MessageLayout.ResponseReceiverOffset));
            Assert.True(answered.Add(receiver), $"a second response to initiation {receiver}");
        }
        Assert.Equal(Enumerable.Range(1000, peers).Select(i => (uint)i).ToHashSet(), answered);
        Assert.Equal(0, device.Counters.HandshakeInvalid);
    }

    private static byte[] Initiation(ReadOnlySpan<byte> responder, byte[] staticPrivate, byte[] staticPublic, uint senderIndex)
    {
        var msg = new byte[MessageLayout.InitiationSize];
        msg[0] = MessageLayout.TypeInitiation;
        BinaryPrimitives.WriteUInt32LittleEndian(msg.AsSpan(MessageLayout.InitiationSenderOffset), senderIndex);
        Span<byte> ephemeral = stackalloc byte[32];
        X25519.GeneratePrivateKey(ephemeral);
        Span<byte> timestamp = stackalloc byte[12];
        Tai64N.Write(DateTimeOffset.UtcNow, timestamp);
        var noise = new NoiseHandshake();
        noise.InitializeWireGuard(responder);
        Assert.True(noise.WriteInitiation(ephemeral, staticPrivate, staticPublic, responder, timestamp,
            msg.AsSpan(MessageLayout.InitiationBodyOffset, MessageLayout.InitiationBodySize)));
        new CookieGenerator(new WgKey(responder), TimeProvider.System).AddMacs(msg);
        return msg;
    }
}
