using System.Buffers.Binary;
using WgEngine.Crypto;
using WgEngine.Noise;
using WgEngine.PacketPlane;

namespace WgEngine.Fuzz;

/// <summary>
/// The fuzz targets. Each takes raw fuzzer bytes; any exception that escapes is a crash. The handshake
/// targets repair what a mutation can never get right by chance (message type, size, mac1) so that the
/// fuzzer reaches the code behind those checks; the raw "dispatch" target keeps the checks themselves
/// under test. A few invariants that must hold for any input are asserted (a violation throws too).
/// </summary>
internal static class Targets
{
    /// <summary>Names in selector order: in "all" mode the first input byte (mod count) picks one.</summary>
    public static readonly string[] Names =
        ["dispatch", "initiation", "response", "cookie", "transport", "ipheader", "icmp", "initiation-load", "replay-window"];

    private static FuzzWorld? _world, _loadedWorld;
    private static FuzzWorld World => _world ??= new FuzzWorld();
    /// <summary>A gateway whose handshake queue is so small that it always asks for a cookie (mac2 path).</summary>
    private static FuzzWorld LoadedWorld => _loadedWorld ??= new FuzzWorld(handshakeQueueSize: 4);

    private static readonly byte[] GatewayMac1Key = DeriveMac1Key();

    /// <summary>Builds the gateways and runs every target once on a small input (JIT, lazy state).</summary>
    public static void Warm()
    {
        Span<byte> input = stackalloc byte[64];
        input.Clear();
        foreach (var name in Names) Run(name, input);
    }

    /// <summary>Not a real target: crashes on inputs starting "WG", to prove the pipeline reports crashes.</summary>
    public const string SelfTest = "selftest";

    public static bool IsTarget(string name) => name is "all" or SelfTest || Array.IndexOf(Names, name) >= 0;

    /// <summary>Runs one input against a target ("all": the first byte selects).</summary>
    public static void Run(string name, ReadOnlySpan<byte> input)
    {
        if (name == "all")
        {
            if (input.IsEmpty) return;
            name = Names[input[0] % Names.Length];
            input = input[1..];
        }
        switch (name)
        {
            case "dispatch": Dispatch(input); break;
            case "initiation": Handshake(World, input, MessageLayout.TypeInitiation, MessageLayout.InitiationSize); break;
            case "response": Handshake(World, input, MessageLayout.TypeResponse, MessageLayout.ResponseSize); break;
            case "cookie": Handshake(World, input, MessageLayout.TypeCookieReply, MessageLayout.CookieReplySize); break;
            case "transport": Transport(input); break;
            case "ipheader": IpHeaderParse(input); break;
            case "icmp": Icmp(input); break;
            case "initiation-load": Handshake(LoadedWorld, input, MessageLayout.TypeInitiation, MessageLayout.InitiationSize); break;
            case "replay-window": ReplayWindowTarget.Run(input); break;
            case SelfTest:
                IpHeaderParse(input); // engine code, so AFL sees coverage
                if (input.StartsWith("WG"u8)) throw new InvalidOperationException("selftest: planted crash");
                break;
            default: throw new ArgumentException($"Unknown target '{name}'.");
        }
    }

    /// <summary>Any datagram, as received: classification by type and size, mac1, then the processing.</summary>
    private static void Dispatch(ReadOnlySpan<byte> datagram)
    {
        var w = World;
        w.Reset();
        w.DispatchAndDrain(datagram);
    }

    /// <summary>A handshake message forced to its type and size, with a correct mac1 (mac2 stays as fuzzed).</summary>
    private static void Handshake(FuzzWorld w, ReadOnlySpan<byte> input, byte type, int size)
    {
        Span<byte> msg = stackalloc byte[size];
        msg.Clear();
        input[..Math.Min(input.Length, size)].CopyTo(msg);
        msg[0] = type;
        msg[1] = msg[2] = msg[3] = 0;
        if (type != MessageLayout.TypeCookieReply)
            Blake2s.Mac(GatewayMac1Key, msg[..^32], msg.Slice(size - 32, 16));
        w.Reset();
        w.DispatchAndDrain(msg);
    }

    /// <summary>
    /// counter (8 bytes, little-endian) || inner packet: sealed as peer A would with the session's fixed
    /// key, so every input authenticates and reaches replay check, IP parsing, the allowed-IPs source
    /// check and routing (echo reply, another peer, egress). Invariant: the same datagram delivered a
    /// second time is dropped as a replay.
    /// </summary>
    private static void Transport(ReadOnlySpan<byte> input)
    {
        if (input.Length < 8) return;
        ulong counter = BinaryPrimitives.ReadUInt64LittleEndian(input);
        var plain = input[8..];
        int maxPlain = PacketBufferCapacity - MessageLayout.TransportHeaderSize - ChaChaPoly.TagSize;
        if (plain.Length > maxPlain) plain = plain[..maxPlain];
        int total = MessageLayout.TransportHeaderSize + plain.Length + ChaChaPoly.TagSize;
        var datagram = new byte[total];
        SealTransport(FuzzWorld.AToGatewayKey, FuzzWorld.TransportIndex, counter, plain, datagram);

        var w = World;
        w.Reset();
        w.DispatchAndDrain(datagram);
        long replayed = w.Device.Counters.Replayed;
        w.DispatchAndDrain(datagram);
        if (w.Device.Counters.Replayed != replayed + 1)
            throw new InvalidOperationException($"A transport packet with counter {counter} was not rejected as a replay on its second delivery.");
    }

    private const int PacketBufferCapacity = Device.PacketBuffer.Capacity;

    /// <summary>Builds a transport message: header, then ChaCha20-Poly1305 of the payload under the counter nonce.</summary>
    public static void SealTransport(ReadOnlySpan<byte> key, uint receiver, ulong counter, ReadOnlySpan<byte> plain, Span<byte> datagram)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(datagram, MessageLayout.TypeTransport);
        BinaryPrimitives.WriteUInt32LittleEndian(datagram[MessageLayout.TransportReceiverOffset..], receiver);
        BinaryPrimitives.WriteUInt64LittleEndian(datagram[MessageLayout.TransportCounterOffset..], counter);
        ChaChaPoly.Seal(key, counter, plain, ReadOnlySpan<byte>.Empty,
            datagram.Slice(MessageLayout.TransportHeaderSize, plain.Length + ChaChaPoly.TagSize));
    }

    /// <summary>IpHeader.TryParse and the accessors it promises are safe after success.</summary>
    private static void IpHeaderParse(ReadOnlySpan<byte> packet)
    {
        if (!IpHeader.TryParse(packet, out var info))
        {
            if (!IpHeader.Source(packet).IsEmpty || !IpHeader.Destination(packet).IsEmpty)
                throw new InvalidOperationException("Source/Destination returned an address for an unparsable packet.");
            return;
        }
        if (info.TotalLength > packet.Length || info.HeaderLength > info.TotalLength)
            throw new InvalidOperationException($"Inconsistent lengths: total {info.TotalLength}, header {info.HeaderLength}, buffer {packet.Length}.");
        _ = info.Source(packet);
        _ = info.Destination(packet);
        _ = info.Payload(packet);
        if (IpHeader.Source(packet).Length != info.AddressLength || IpHeader.Destination(packet).Length != info.AddressLength)
            throw new InvalidOperationException("Address length does not match the IP version.");
        if (info.IsIPv4)
        {
            _ = IpHeader.IsIPv4HeaderChecksumValid(packet, info.HeaderLength);
            _ = IpHeader.IsIPv4Fragment(packet);
        }
    }

    /// <summary>
    /// TryBuildReply on the input (the first byte shortens the declared length, to cover length &lt; buffer).
    /// Invariants: a reply is no longer than the request, parses, is an echo reply and carries valid checksums.
    /// </summary>
    private static void Icmp(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return;
        var packet = input[1..].ToArray();
        int length = packet.Length - (input[0] & 0x0F);
        int reply = IcmpEchoResponder.TryBuildReply(packet, length);
        if (reply == 0) return;
        if (reply < 0 || reply > length) throw new InvalidOperationException($"Reply length {reply} outside the request's {length}.");
        var r = packet.AsSpan(0, reply);
        if (!IpHeader.TryParse(r, out var info)) throw new InvalidOperationException("The echo reply does not parse.");
        var icmp = info.Payload(r);
        if (info.IsIPv4)
        {
            if (!IpHeader.IsIPv4HeaderChecksumValid(r, info.HeaderLength)) throw new InvalidOperationException("Bad IPv4 header checksum in the reply.");
            if (icmp[0] != IcmpEchoResponder.IcmpV4EchoReply || !Checksum.IsValid(icmp)) throw new InvalidOperationException("Bad ICMPv4 echo reply.");
        }
        else if (icmp[0] != IcmpEchoResponder.IcmpV6EchoReply ||
                 !Checksum.IsValidV6(info.Source(r), info.Destination(r), IcmpEchoResponder.NextHeaderIcmpV6, icmp))
            throw new InvalidOperationException("Bad ICMPv6 echo reply.");
    }

    private static byte[] DeriveMac1Key()
    {
        byte[] pub = FuzzWorld.GatewayKey.PublicKey.ToArray(), mac1 = new byte[32], cookie = new byte[32];
        CookieChecker.DeriveKeys(pub, mac1, cookie);
        return mac1;
    }
}
