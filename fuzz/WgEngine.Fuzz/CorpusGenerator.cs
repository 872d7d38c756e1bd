using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Noise;

namespace WgEngine.Fuzz;

/// <summary>
/// Writes the seed corpus (fuzz/corpus/&lt;target&gt;/): handshake messages captured from a real client
/// device (peer A's fixed key) talking to the harness gateway, transport packets sealed with the fixed
/// session key, and echo requests. Each seed is then checked against the harness: it must reach the
/// deep path it is meant to seed, or generation fails.
/// </summary>
internal static class CorpusGenerator
{
    private static readonly IPEndPoint GatewayEndpoint = new(IPAddress.Parse("192.0.2.1"), 51820);

    public static int Generate(string root)
    {
        var initiation = CaptureInitiation();
        var response = CaptureAnswerToInFlightInitiation(handshakeQueueSize: 4096, MessageLayout.ResponseSize);
        var cookie = CaptureAnswerToInFlightInitiation(handshakeQueueSize: 4, MessageLayout.CookieReplySize);

        var inner = new (string Name, byte[] Packet)[]
        {
            ("echo-v4", SeedPackets.EchoRequestV4("10.8.0.2", "10.8.0.1", 0x4242, 1, 56)),
            ("echo-v6", SeedPackets.EchoRequestV6("fd00:8::2", "fd00:8::1", 0x4242, 1, 56)),
            ("to-peer-b", SeedPackets.UdpV4("10.8.0.2", "10.8.0.3", 5000, 53, 20)),
            ("egress", SeedPackets.UdpV4("10.8.0.2", "198.51.100.7", 5000, 53, 20)),
            ("spoofed-source", SeedPackets.EchoRequestV4("10.8.0.9", "10.8.0.1", 7, 1, 8)),
            ("keepalive", []),
        };

        Write(root, "initiation", "initiation", initiation);
        Write(root, "initiation-load", "initiation", initiation);
        Write(root, "response", "response", response);
        Write(root, "cookie", "cookie-reply", cookie);
        Write(root, "dispatch", "initiation", initiation);
        Write(root, "dispatch", "response", response);
        Write(root, "dispatch", "cookie-reply", cookie);
        ulong counter = 0;
        foreach (var (name, packet) in inner)
        {
            var plain = SeedPackets.Padded(packet);
            var transport = new byte[16 + plain.Length + 16];
            Targets.SealTransport(FuzzWorld.AToGatewayKey, FuzzWorld.TransportIndex, counter, plain, transport);
            Write(root, "dispatch", "transport-" + name, transport);
            var t = new byte[8 + plain.Length];
            BitConverter.TryWriteBytes(t, counter);
            plain.CopyTo(t, 8);
            Write(root, "transport", name, t);
            counter += 3;
            if (packet.Length == 0 || name == "spoofed-source") continue;
            Write(root, "ipheader", name, packet);
            Write(root, "icmp", name, [0, .. packet]);
        }
        // Replay window: in-order counters, a replay, a step back, a jump by the window size, the
        // window's far edge just inside and just outside, and counters at Reject-After-Messages.
        Write(root, "replay-window", "in-order-and-edges",
            [0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0x80, 0, 0, 1, 0xC0, 0x1F, 1, 0xC1, 0x1F, 3, 0, 0, 3, 1, 0, 0x07, 0, 0]);
        Write(root, "replay-window", "sparse", [2, 0xFF, 0xFF, 2, 3, 0, 0x80, 0xFF, 0x7F, 1, 0xFF, 0xFF, 2, 3, 0]);
        Verify(root);
        Console.WriteLine($"Seed corpus written to {root} and verified.");
        return 0;
    }

    /// <summary>Peer A's device sends a packet to the gateway: with no session yet, its first datagram is an initiation.</summary>
    private static byte[] CaptureInitiation()
    {
        var bind = new CaptureBind();
        using var client = NewClient(bind, 4096);
        if (!client.SendPacket(SeedPackets.EchoRequestV4("10.8.0.2", "10.8.0.1", 1, 1, 8)))
            throw new InvalidOperationException("The client did not route the packet to the gateway.");
        return bind.Single(MessageLayout.InitiationSize);
    }

    /// <summary>Peer A's device receives the gateway's fixed in-flight initiation and answers (response, or cookie reply under load).</summary>
    private static byte[] CaptureAnswerToInFlightInitiation(int handshakeQueueSize, int expectedSize)
    {
        var bind = new CaptureBind();
        using var client = NewClient(bind, handshakeQueueSize);
        var world = new FuzzWorld();
        new SyncDriver(client).Receive(world.InFlightInitiation, GatewayEndpoint.Serialize());
        return bind.Single(expectedSize);
    }

    private static WgDevice NewClient(CaptureBind bind, int handshakeQueueSize)
    {
        var client = new WgDevice(FuzzWorld.PeerAKey, bind, new DeviceOptions
        {
            TimeProvider = new FakeTimeProvider(FuzzWorld.Epoch),
            Addresses = [IpPrefix.Parse("10.8.0.2/32")],
            Workers = 1,
            PreallocatedBuffers = 4,
            HandshakeQueueSize = handshakeQueueSize,
        });
        client.AddPeer(new PeerConfig
        {
            PublicKey = FuzzWorld.GatewayKey.PublicKey,
            AllowedIPs = [IpPrefix.Parse("10.8.0.0/24"), IpPrefix.Parse("fd00:8::/64")],
            Endpoint = GatewayEndpoint,
        });
        return client;
    }

    /// <summary>Every seed must reach what it is there for; a seed that silently stops authenticating is useless.</summary>
    public static void Verify(string root)
    {
        byte[] initiation = File.ReadAllBytes(Path.Combine(root, "initiation", "initiation"));
        byte[] response = File.ReadAllBytes(Path.Combine(root, "response", "response"));
        byte[] cookie = File.ReadAllBytes(Path.Combine(root, "cookie", "cookie-reply"));
        var w = new FuzzWorld();
        var c = w.Device.Counters;
        // A responder's handshake completes only when the initiator's first packet confirms it; the
        // initiation seed has reached the end of its path when the gateway answers it.
        Expect(w, initiation, () => w.Bind.SentDatagrams, "the initiation is answered with a response");
        Expect(w, response, () => c.Handshakes, "the response completes the gateway's handshake");
        long invalid = c.HandshakeInvalid, unknown = c.UnknownIndex;
        w.Reset();
        w.DispatchAndDrain(cookie);
        if (c.HandshakeInvalid != invalid || c.UnknownIndex != unknown) throw new InvalidOperationException("The cookie reply was rejected.");
        string[] echoes = Directory.GetFiles(Path.Combine(root, "dispatch"), "transport-echo-*");
        if (echoes.Length != 2) throw new InvalidOperationException("Seed check failed: expected IPv4 and IPv6 echo transport seeds.");
        foreach (var file in echoes)
            Expect(w, File.ReadAllBytes(file), () => c.EchoReplies, Path.GetFileName(file) + " is answered");
        Expect(w, File.ReadAllBytes(Path.Combine(root, "dispatch", "transport-spoofed-source")), () => c.NotAllowedSource, "the spoofed source is refused");
        Expect(w, File.ReadAllBytes(Path.Combine(root, "dispatch", "transport-to-peer-b")), () => w.Bind.SentDatagrams, "a packet for peer B is sealed and sent");
        Expect(w, File.ReadAllBytes(Path.Combine(root, "dispatch", "transport-egress")), () => w.Egress.Delivered, "a packet for outside goes to egress");
        var loaded = new FuzzWorld(handshakeQueueSize: 4);
        Expect(loaded, initiation, () => loaded.Device.Counters.CookieReplies, "under load the initiation gets a cookie reply");
    }

    private static void Expect(FuzzWorld w, byte[] datagram, Func<long> counter, string what)
    {
        long before = counter();
        w.Reset();
        w.DispatchAndDrain(datagram);
        if (counter() != before + 1) throw new InvalidOperationException("Seed check failed: " + what + ".");
    }

    private static void Write(string root, string target, string name, byte[] data)
    {
        var dir = Path.Combine(root, target);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, name), data);
    }
}

/// <summary>Records what a device sends (the generator's capture point).</summary>
internal sealed class CaptureBind : IBind
{
    private readonly List<byte[]> _sent = [];
    public int Port => 51821;
    public int Receive(Span<byte> buffer, SocketAddress from) => -1;
    public bool Send(ReadOnlySpan<byte> datagram, SocketAddress to)
    {
        _sent.Add(datagram.ToArray());
        return true;
    }
    public SocketAddress ToSocketAddress(IPEndPoint endpoint) => endpoint.Serialize();
    public IPEndPoint ToEndPoint(SocketAddress address) =>
        (IPEndPoint)new IPEndPoint(address.Family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0).Create(address);
    public void Dispose() { }

    public byte[] Single(int expectedSize) =>
        _sent.Count == 1 && _sent[0].Length == expectedSize
            ? _sent[0]
            : throw new InvalidOperationException($"Expected one {expectedSize}-byte datagram, captured {_sent.Count}: {string.Join(", ", _sent.Select(s => s.Length))}.");
}
