using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using WgEngine.Conn;

namespace WgEngine.Bench;

/// <summary>
/// Sending 32 WireGuard-sized datagrams to a loopback socket: one sendmmsg (Native = true) against one
/// sendto each (Native = false, the portable path). The receiver is drained between iterations so its
/// buffer never fills; the loopback delivery is part of the cost, as it is for a real peer on this host.
/// </summary>
[MemoryDiagnoser]
public class UdpBatchBenchmarks
{
    private const int Batch = 32;

    [Params(true, false)]
    public bool Native;

    private UdpBind _bind = null!;
    private Socket _receiver = null!;
    private readonly ReadOnlyMemory<byte>[] _datagrams = new ReadOnlyMemory<byte>[Batch];
    private readonly SocketAddress[] _to = new SocketAddress[Batch];
    private readonly bool[] _sent = new bool[Batch];
    private readonly byte[] _drain = new byte[2048];

    [GlobalSetup]
    public void Setup()
    {
        _bind = new UdpBind(0, IPAddress.Loopback, Native);
        _receiver = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 8 << 20 };
        _receiver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var to = _bind.ToSocketAddress((IPEndPoint)_receiver.LocalEndPoint!);
        for (int i = 0; i < Batch; i++)
        {
            _datagrams[i] = new byte[1452];   // a full 1420-MTU packet sealed: 16 B header + 1420 + 16 B tag
            _to[i] = to;
        }
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "send one datagram (in batches of 32)")]
    public int Send()
    {
        int n = _bind.SendBatch(_datagrams, _to, _sent);
        while (_receiver.Available > 0) _receiver.Receive(_drain);
        return n;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _bind.Dispose();
        _receiver.Dispose();
    }
}
