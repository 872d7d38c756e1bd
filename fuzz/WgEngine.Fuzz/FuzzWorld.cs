using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Session;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Noise;

namespace WgEngine.Fuzz;

/// <summary>
/// A deterministic gateway for the fuzz targets: fixed static keys, a frozen clock, a bind that
/// swallows what it sends, and (re)installed before every input:
/// <list type="bullet">
/// <item>peer A (the "client" whose messages we forge): a transport keypair with fixed keys under
/// <see cref="TransportIndex"/>, and an initiation of the gateway's in flight under
/// <see cref="HandshakeIndex"/> with a fixed ephemeral, so recorded responses and cookie replies
/// to it authenticate in every run;</item>
/// <item>peer B: a session with fixed keys too, so packets routed from A to B get encrypted and sent.</item>
/// </list>
/// The device's threads are never started: <see cref="DispatchAndDrain"/> calls Dispatch and then runs
/// the queued work on the calling thread through the internal processing methods, so an exception
/// escapes to the fuzzer instead of being counted by the worker's catch-all.
/// </summary>
internal sealed class FuzzWorld
{
    public const uint TransportIndex = 0x11111111, TransportRemoteIndex = 0x22222222;
    public const uint HandshakeIndex = 0x33333333;
    public const uint PeerBIndex = 0x44444444, PeerBRemoteIndex = 0x55555555;

    public static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public static readonly IPEndPoint PeerAEndpoint = new(IPAddress.Parse("192.0.2.10"), 40000);
    public static readonly IPEndPoint PeerBEndpoint = new(IPAddress.Parse("192.0.2.11"), 40001);

    // Fixed test keys (not secrets: they exist only in this harness and its corpus).
    public static readonly WgPrivateKey GatewayKey = WgPrivateKey.FromBytes(Fill(0x47));
    public static readonly WgPrivateKey PeerAKey = WgPrivateKey.FromBytes(Fill(0x41));
    public static readonly WgPrivateKey PeerBKey = WgPrivateKey.FromBytes(Fill(0x42));
    /// <summary>The gateway's ephemeral for its in-flight initiation to A.</summary>
    public static readonly byte[] GatewayEphemeral = Clamped(Fill(0x45));
    /// <summary>Transport keys of the A session, from A's side: A sends with this, the gateway receives with it.</summary>
    public static readonly byte[] AToGatewayKey = Fill(0xA1);
    public static readonly byte[] GatewayToAKey = Fill(0xA2);
    public static readonly byte[] GatewayToBKey = Fill(0xB2);
    public static readonly byte[] BToGatewayKey = Fill(0xB1);

    public static readonly IpPrefix GatewayV4 = IpPrefix.Parse("10.8.0.1/24");
    public static readonly IpPrefix GatewayV6 = IpPrefix.Parse("fd00:8::1/64");

    private readonly IndexTable _indices;
    private readonly SyncDriver _driver;
    private readonly byte[] _inFlightInitiation = new byte[MessageLayout.InitiationSize];
    private readonly NoiseHandshake _inFlightNoise = new();
    private readonly SocketAddress _peerAAddress, _peerBAddress;

    public FakeTimeProvider Time { get; } = new(Epoch);
    public SinkBind Bind { get; } = new();
    public SinkEgress Egress { get; } = new();
    public WgDevice Device { get; }
    public Peer PeerA { get; }
    public Peer PeerB { get; }
    /// <summary>The gateway's in-flight initiation to A (what a recorded response or cookie reply answers).</summary>
    public ReadOnlySpan<byte> InFlightInitiation => _inFlightInitiation;

    /// <param name="handshakeQueueSize">Below 8 the device always considers itself under load (cookie path).</param>
    public FuzzWorld(int handshakeQueueSize = 4096)
    {
        Device = new WgDevice(GatewayKey, Bind, new DeviceOptions
        {
            TimeProvider = Time,
            Addresses = [GatewayV4, GatewayV6],
            Workers = 1,
            PreallocatedBuffers = 4,
            HandshakeQueueSize = handshakeQueueSize,
            Egress = Egress,
        });
        Device.AddPeer(new PeerConfig
        {
            PublicKey = PeerAKey.PublicKey,
            AllowedIPs = [IpPrefix.Parse("10.8.0.2/32"), IpPrefix.Parse("fd00:8::2/128")],
            Endpoint = PeerAEndpoint,
        });
        Device.AddPeer(new PeerConfig
        {
            PublicKey = PeerBKey.PublicKey,
            AllowedIPs = [IpPrefix.Parse("10.8.0.3/32"), IpPrefix.Parse("fd00:8::3/128")],
            Endpoint = PeerBEndpoint,
        });
        _driver = new SyncDriver(Device);
        PeerA = _driver.Peer(PeerAKey.PublicKey);
        PeerB = _driver.Peer(PeerBKey.PublicKey);
        _indices = _driver.Indices;
        _peerAAddress = PeerAEndpoint.Serialize();
        _peerBAddress = PeerBEndpoint.Serialize();
        BuildInFlightInitiation();
        Reset();
    }

    /// <summary>The gateway's initiation to A, computed once with the fixed ephemeral and the frozen clock.</summary>
    private void BuildInFlightInitiation()
    {
        Span<byte> peerPublic = stackalloc byte[32], ourPublic = stackalloc byte[32], timestamp = stackalloc byte[12];
        PeerAKey.PublicKey.CopyTo(peerPublic);
        GatewayKey.PublicKey.CopyTo(ourPublic);
        Tai64N.Write(Time.GetUtcNow(), timestamp);
        var msg = _inFlightInitiation.AsSpan();
        msg[0] = MessageLayout.TypeInitiation;
        BinaryPrimitives.WriteUInt32LittleEndian(msg[MessageLayout.InitiationSenderOffset..], HandshakeIndex);
        _inFlightNoise.InitializeWireGuard(peerPublic);
        if (!_inFlightNoise.WriteInitiation(GatewayEphemeral, GatewayKey.Span, ourPublic, peerPublic, timestamp,
                msg.Slice(MessageLayout.InitiationBodyOffset, MessageLayout.InitiationBodySize)))
            throw new InvalidOperationException("Could not build the fixed initiation.");
        new CookieGenerator(PeerAKey.PublicKey, Time).AddMacs(msg);
    }

    /// <summary>Puts every piece of per-peer state an input can change back to the fixed starting point.</summary>
    public void Reset()
    {
        _driver.Discard();
        ResetPeer(PeerA, _peerAAddress);
        ResetPeer(PeerB, _peerBAddress);

        // A: the fixed session, and the gateway's own initiation in flight.
        var a = NewKeypair(PeerA, TransportIndex, TransportRemoteIndex, AToGatewayKey, GatewayToAKey);
        PeerA.Keypairs.UseAsInitiator(a);
        lock (PeerA.Session.Lock)
        {
            PeerA.Session.RestoreInitiationInFlight(_inFlightNoise, GatewayEphemeral, HandshakeIndex);
            PeerA.Timers.InitiationSent(Time.GetTimestamp(), 0, new ProtocolTimes(Time.TimestampFrequency));
        }
        _indices.Replace(HandshakeIndex, new IndexEntry(PeerA, null));
        PeerA.Cookies.AddMacs(_inFlightInitiation.AsSpan().ToArray()); // arms the cookie reply (last mac1)

        // B: a session, so routed packets are sealed and sent rather than staged.
        PeerB.Keypairs.UseAsInitiator(NewKeypair(PeerB, PeerBIndex, PeerBRemoteIndex, BToGatewayKey, GatewayToBKey));
    }

    private void ResetPeer(Peer peer, SocketAddress endpoint)
    {
        peer.Keypairs.Clear().ForEach(kp => _indices.Remove(kp.LocalIndex));
        lock (peer.Session.Lock) peer.Session.ResetHandshake();
        while (peer.Staged.TryDequeue(out _)) Interlocked.Decrement(ref peer.StagedCount);
        peer.Endpoint = endpoint;
    }

    private Keypair NewKeypair(Peer peer, uint local, uint remote, byte[] receiveKey, byte[] sendKey)
    {
        var kp = new Keypair(isInitiator: false, local, remote, Time.GetTimestamp());
        receiveKey.CopyTo(kp.ReceiveKeySpan);
        sendKey.CopyTo(kp.SendKeySpan);
        _indices.Replace(local, new IndexEntry(peer, kp));
        return kp;
    }

    /// <summary>Feeds one datagram from peer A's address through the receive path, synchronously.</summary>
    public void DispatchAndDrain(ReadOnlySpan<byte> datagram) => _driver.Receive(datagram, _peerAAddress);

    private static byte[] Fill(byte b) => Enumerable.Repeat(b, 32).ToArray();

    private static byte[] Clamped(byte[] k)
    {
        X25519.Clamp(k);
        return k;
    }
}

/// <summary>A bind that never receives and drops what it sends (the device's threads never run here).</summary>
internal sealed class SinkBind : IBind
{
    public int Port => 51820;
    public long SentDatagrams;
    public int Receive(Span<byte> buffer, SocketAddress from) => -1;
    public bool Send(ReadOnlySpan<byte> datagram, SocketAddress to)
    {
        SentDatagrams++;
        return true;
    }
    public SocketAddress ToSocketAddress(IPEndPoint endpoint) => endpoint.Serialize();
    public IPEndPoint ToEndPoint(SocketAddress address) =>
        (IPEndPoint)new IPEndPoint(address.Family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0).Create(address);
    public void Dispose() { }
}

/// <summary>Egress that discards, so that packets for outside addresses take the egress branch.</summary>
internal sealed class SinkEgress : IEgress
{
    public long Delivered;
    public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet) => Delivered++;
}
