using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using WgEngine.Conn;

namespace WgEngine.Bench;

/// <summary>
/// Receiving 32 WireGuard-sized datagrams (1,452 B) over loopback through UdpBind.ReceiveBatch, the
/// send included: with the receiver's UDP GRO on or off, and the sender using GSO (one coalesced
/// message on loopback) or not (32 separate datagrams, where GRO only adds the copy out of its slot).
/// </summary>
[MemoryDiagnoser]
public class UdpBatchReceiveBenchmarks
{
    private const int Batch = 32;

    [Params(true, false)]
    public bool Gro;

    [Params(true, false)]
    public bool SenderGso;

    private UdpBind _sender = null!, _receiver = null!;
    private readonly ReadOnlyMemory<byte>[] _datagrams = new ReadOnlyMemory<byte>[Batch];
    private readonly SocketAddress[] _to = new SocketAddress[Batch];
    private readonly bool[] _sent = new bool[Batch];
    private readonly Memory<byte>[] _buffers = new Memory<byte>[Batch];
    private readonly SocketAddress[] _from = new SocketAddress[Batch];
    private readonly int[] _lengths = new int[Batch];

    [GlobalSetup]
    public void Setup()
    {
        _receiver = new UdpBind(0, IPAddress.Loopback, udpGro: Gro);
        _sender = new UdpBind(0, IPAddress.Loopback, udpGro: false) { UdpSegmentation = SenderGso };
        if (_receiver.UdpGro != Gro) throw new InvalidOperationException("UDP_GRO not available here");
        var to = _sender.ToSocketAddress(new IPEndPoint(IPAddress.Loopback, _receiver.Port));
        for (int i = 0; i < Batch; i++)
        {
            _datagrams[i] = new byte[1452];
            _to[i] = to;
            _buffers[i] = new byte[4096];   // the device's PacketBuffer capacity
            _from[i] = new SocketAddress(AddressFamily.InterNetworkV6);
        }
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "send + receive one datagram (in batches of 32)")]
    public int SendAndReceive()
    {
        _sender.SendBatch(_datagrams, _to, _sent);
        int got = 0;
        while (got < Batch)
        {
            int n = _receiver.ReceiveBatch(_buffers, _from, _lengths);
            if (n <= 0) throw new InvalidOperationException("receive failed");
            got += n;
        }
        return got;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sender.Dispose();
        _receiver.Dispose();
    }
}
