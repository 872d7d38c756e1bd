using System.Net;
using BenchmarkDotNet.Attributes;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgEngine.Bench;

/// <summary>
/// Engine to engine over loopback: a client device sends 32 full-size (1,420 B) packets in one send scope
/// (one GSO message on the wire) to a gateway device, which decrypts them and hands them to a counting
/// egress; one operation ends when all 32 arrived. Gro: the gateway's bind takes them as one coalesced
/// message and splits it (true) or lets the kernel split them into 32 datagrams (false).
/// </summary>
[MemoryDiagnoser]
public class UdpBatchDeviceBenchmarks
{
    private const int Batch = 32;

    [Params(true, false)]
    public bool Gro;

    private sealed class CountingEgress : IEgress
    {
        public long Count;
        public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet) => Interlocked.Increment(ref Count);
    }

    private readonly CountingEgress _egress = new();
    private UdpBind _gatewayBind = null!;
    private WgDevice _gateway = null!, _client = null!;
    private readonly byte[] _packet = new byte[1420];
    private long _expected;

    [GlobalSetup]
    public void Setup()
    {
        var gwKey = WgPrivateKey.Generate();
        var clientKey = WgPrivateKey.Generate();
        _gatewayBind = new UdpBind(0, IPAddress.Loopback, udpGro: Gro);
        if (_gatewayBind.UdpGro != Gro) throw new InvalidOperationException("UDP_GRO not available here");
        _gateway = new WgDevice(gwKey, _gatewayBind, new DeviceOptions { Addresses = [IpPrefix.Parse("10.8.0.1/24")], Egress = _egress, Workers = 1 });
        _client = new WgDevice(clientKey, new UdpBind(0, IPAddress.Loopback), new DeviceOptions { Workers = 1 });
        _gateway.AddPeer(new PeerConfig { PublicKey = clientKey.PublicKey, AllowedIPs = [IpPrefix.Parse("10.8.0.2/32")] });
        _client.AddPeer(new PeerConfig
        {
            PublicKey = gwKey.PublicKey,
            AllowedIPs = [IpPrefix.Parse("10.9.0.0/16")],
            Endpoint = new IPEndPoint(IPAddress.Loopback, _gateway.ListenPort),
        });
        _gateway.Start();
        _client.Start();
        // An IPv4 header (version 4, IHL 5, total length, UDP) from 10.8.0.2 to 10.9.0.7; the rest zeros.
        _packet[0] = 0x45;
        _packet[2] = 1420 >> 8;
        _packet[3] = 1420 & 0xFF;
        _packet[8] = 64;
        _packet[9] = 17;
        new byte[] { 10, 8, 0, 2, 10, 9, 0, 7 }.CopyTo(_packet, 12);
        _client.SendPacket(_packet);   // the handshake; then the session carries everything
        _expected = 1;
        Wait();
    }

    private void Wait()
    {
        var deadline = Environment.TickCount64 + 10_000;
        while (Interlocked.Read(ref _egress.Count) < _expected)
        {
            if (Environment.TickCount64 > deadline) throw new TimeoutException($"{_expected - _egress.Count} packets lost");
            Thread.SpinWait(20);
        }
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "client to gateway, one packet (in GSO bursts of 32)")]
    public void Burst()
    {
        bool scope = _client.BeginSendBatch();
        for (int i = 0; i < Batch; i++) _client.SendPacket(_packet);
        if (scope) _client.EndSendBatch();
        _expected += Batch;
        Wait();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Console.WriteLine($"// gateway: UdpGro={_gatewayBind.UdpGro}, coalesced datagrams split: {_gatewayBind.CoalescedDatagrams}, delivered {_egress.Count}");
        _client.Dispose();
        _gateway.Dispose();
    }
}
