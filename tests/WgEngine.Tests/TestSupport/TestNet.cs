using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Time.Testing;
using WgEngine.Conn;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Device;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgEngine.Tests.TestSupport;

/// <summary>Captures what a device hands to egress.</summary>
internal sealed class CaptureEgress : IEgress
{
    public readonly BlockingCollection<(WgKey From, byte[] Packet)> Packets = new();
    public void Deliver(WgKey fromPeer, ReadOnlySpan<byte> packet) => Packets.Add((fromPeer, packet.ToArray()));

    public byte[] Next(TimeSpan? timeout = null)
    {
        Assert.True(Packets.TryTake(out var p, timeout ?? TimeSpan.FromSeconds(5)), "no packet reached egress in time");
        return p.Packet;
    }
}

/// <summary>Devices on an in-memory network, with every datagram recorded.</summary>
internal sealed class TestNet : IDisposable
{
    private readonly List<WgDevice> _devices = new();
    private readonly List<ChannelBind> _binds = new();
    private int _nextPort = 40000;

    public TestNet(TimeProvider? time = null)
    {
        Time = time ?? TimeProvider.System;
        Network.Drop = (from, to, data) =>
        {
            Datagrams.Enqueue((from, to, data));
            return DropFilter?.Invoke(from, to, data) ?? false;
        };
    }

    public ChannelNetwork Network { get; } = new();
    public TimeProvider Time { get; }
    public ConcurrentQueue<(IPEndPoint From, IPEndPoint To, byte[] Data)> Datagrams { get; } = new();
    public Func<IPEndPoint, IPEndPoint, byte[], bool>? DropFilter { get; set; }

    public (WgDevice Device, WgPrivateKey Key, ChannelBind Bind) Create(string[]? addresses = null, IEgress? egress = null)
    {
        var key = WgPrivateKey.Generate();
        var bind = Network.CreateBind(_nextPort++);
        _binds.Add(bind);
        var device = new WgDevice(key, bind, new DeviceOptions
        {
            TimeProvider = Time,
            Addresses = (addresses ?? []).Select(IpPrefix.Parse).ToArray(),
            Egress = egress,
            Workers = 2,
        });
        device.Start();
        _devices.Add(device);
        return (device, key, bind);
    }

    /// <summary>
    /// The usual topology: a gateway at 10.8.0.1/24 and a client at 10.8.0.2 that routes everything to
    /// it and knows its endpoint (the gateway learns the client's from its first handshake).
    /// </summary>
    public (WgDevice Gateway, WgPrivateKey GatewayKey, ChannelBind GatewayBind, WgDevice Client, WgPrivateKey ClientKey, ChannelBind ClientBind)
        GatewayWithClient(IEgress? gatewayEgress = null, IEgress? clientEgress = null)
    {
        var (gw, gwKey, gwBind) = Create(["10.8.0.1/24"], gatewayEgress);
        var (client, clientKey, clientBind) = Create(egress: clientEgress);
        gw.AddPeer(Peer(clientKey.PublicKey, ["10.8.0.2/32"]));
        client.AddPeer(Peer(gwKey.PublicKey, ["0.0.0.0/0"], gwBind.LocalEndPoint));
        return (gw, gwKey, gwBind, client, clientKey, clientBind);
    }

    public static PeerConfig Peer(WgKey key, string[] allowed, IPEndPoint? endpoint = null, int keepalive = 0) => new()
    {
        PublicKey = key,
        AllowedIPs = allowed.Select(IpPrefix.Parse).ToArray(),
        Endpoint = endpoint,
        PersistentKeepalive = keepalive,
    };

    public int CountSent(IPEndPoint from, byte type) => Datagrams.Count(d => d.From.Equals(from) && d.Data.Length > 0 && d.Data[0] == type);

    /// <summary>
    /// Waits until the network is quiescent: every datagram sent has been taken by its device and
    /// processed (binds drained, workers and handshake queues idle), and nothing new was sent meanwhile.
    /// A fake clock's timers run inside Advance, so after this, everything that step caused has happened.
    /// </summary>
    public void WaitQuiescent(int timeoutMs = 10000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            int before = Datagrams.Count;
            if (_binds.TrueForAll(b => b.IsDrained) && _devices.TrueForAll(d => d.QueuesIdle)
                && _binds.TrueForAll(b => b.IsDrained) && Datagrams.Count == before)
                return;
            if (Environment.TickCount64 > deadline) Assert.Fail("timed out waiting for the devices to process what was sent");
            Thread.Yield();
        }
    }

    public static void WaitFor(Func<bool> condition, string what, int timeoutMs = 5000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline) Assert.Fail("timed out waiting for " + what);
            Thread.Sleep(5);
        }
    }

    public void Dispose()
    {
        foreach (var d in _devices) d.Dispose();
    }
}
