using System.Buffers.Binary;
using System.Net;
using WgEngine.Noise;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Device;

/// <summary>
/// Hostile input of every message type: each is dropped silently (no reply), counted under its reason,
/// and the device keeps working for a legitimate client afterwards.
/// </summary>
public class MalformedPacketTests
{
    private static readonly IPEndPoint Attacker = new(IPAddress.Loopback, 39999);

    [Fact]
    public void EveryKindOfBadDatagramIsDroppedCountedAndUnanswered()
    {
        using var net = new TestNet();
        var (gw, gwKey, gwBind) = net.Create(["10.8.0.1/24"]);
        var sink = new CaptureEgress();
        var (client, clientKey, _) = net.Create(egress: sink);
        gw.AddPeer(TestNet.Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(TestNet.Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1)));
        sink.Next();

        var macs = new CookieGenerator(gwKey.PublicKey, TimeProvider.System);
        var rng = new Random(1234);
        byte[] Random(int n) { var b = new byte[n]; rng.NextBytes(b); return b; }
        byte[] WithType(byte[] b, byte type) { b[0] = type; b[1] = b[2] = b[3] = 0; return b; }

        long expectedMalformed = 0, expectedMac1 = 0, expectedInvalid = 0, expectedUnknown = 0;
        // Empty, tiny, unknown types, nonzero reserved bytes.
        foreach (var d in new[] { Array.Empty<byte>(), new byte[] { 1 }, new byte[] { 1, 0, 0 }, WithType(Random(148), 5),
                     WithType(Random(148), 0), new byte[] { 1, 1, 0, 0 }.Concat(new byte[144]).ToArray() })
        { gwBind.Enqueue(d, Attacker); expectedMalformed++; }
        // Wrong lengths for each type.
        foreach (var (type, len) in new[] { (1, 147), (1, 149), (2, 91), (2, 93), (3, 63), (3, 65), (4, 31), (4, 15) })
        { gwBind.Enqueue(WithType(Random(len), (byte)type), Attacker); expectedMalformed++; }
        // Right lengths, wrong mac1.
        gwBind.Enqueue(WithType(Random(148), 1), Attacker); expectedMac1++;
        gwBind.Enqueue(WithType(Random(92), 2), Attacker); expectedMac1++;
        // Right mac1, garbage Noise body: fails to decrypt.
        var init = WithType(Random(148), 1); macs.AddMacs(init);
        gwBind.Enqueue(init, Attacker); expectedInvalid++;
        // Response with right mac1 to an index nobody holds.
        var resp = WithType(Random(92), 2); macs.AddMacs(resp);
        gwBind.Enqueue(resp, Attacker); expectedUnknown++;
        // Cookie reply and transport to unknown indices.
        gwBind.Enqueue(WithType(Random(64), 3), Attacker); expectedUnknown++;
        gwBind.Enqueue(WithType(Random(100), 4), Attacker); expectedUnknown++;

        TestNet.WaitFor(() => gw.Counters.Malformed == expectedMalformed && gw.Counters.BadMac1 == expectedMac1
                              && gw.Counters.HandshakeInvalid == expectedInvalid && gw.Counters.UnknownIndex == expectedUnknown,
            $"drop counters (malformed {gw.Counters.Malformed}, mac1 {gw.Counters.BadMac1}, invalid {gw.Counters.HandshakeInvalid}, unknown {gw.Counters.UnknownIndex})");

        // Nothing was ever sent to the attacker.
        Assert.DoesNotContain(net.Datagrams, d => d.To.Equals(Attacker));

        // Still serving the real client.
        Assert.True(client.SendPacket(Packets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 2)));
        Assert.Equal(0, sink.Next()[20]);
    }

    [Fact]
    public void TamperedAndReplayedTransportPacketsAreRejected()
    {
        using var net = new TestNet();
        var gwSink = new CaptureEgress();
        var (gw, gwKey, gwBind, client, clientKey, clientBind) = net.GatewayWithClient(gatewayEgress: gwSink);
        var packet = Packets.UdpV4("10.8.0.2", "192.0.2.9", 1, 2, new byte[40]);
        Assert.True(client.SendPacket(packet));
        Assert.Equal(packet, gwSink.Next());

        var sent = net.Datagrams.Last(d => d.From.Equals(clientBind.LocalEndPoint) && d.Data[0] == MessageLayout.TypeTransport && d.Data.Length > 32).Data;
        // Replay of an accepted packet.
        gwBind.Enqueue((byte[])sent.Clone(), clientBind.LocalEndPoint);
        TestNet.WaitFor(() => gw.Counters.Replayed == 1, "the replay to be refused");
        // Every single-bit flip in the ciphertext or the counter fails authentication.
        for (int i = 8; i < sent.Length; i += 5)
        {
            var bad = (byte[])sent.Clone();
            bad[i] ^= 0x80;
            gwBind.Enqueue(bad, clientBind.LocalEndPoint);
        }
        int flips = (sent.Length - 8 + 4) / 5;
        TestNet.WaitFor(() => gw.Counters.AuthFailed == flips, $"{flips} forgeries to fail authentication");
        Assert.False(gwSink.Packets.TryTake(out _, 100));
        Assert.Equal(1, gw.Counters.Replayed);
    }
}
