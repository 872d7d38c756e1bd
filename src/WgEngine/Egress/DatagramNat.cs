using System.Buffers;
using System.Net;
using System.Net.Sockets;
using WgEngine.Crypto;

namespace WgEngine.Egress;

/// <summary>
/// The part UDP and ICMP echo share: a NAT table of host datagram sockets, one per mapping, each
/// unconnected (replies from any address come back: endpoint-independent mapping, RFC 4787 §4.1),
/// with one async receive loop per socket (no thread per flow), limits, and one idle sweep on a
/// timer of the injected TimeProvider. Replies are received right behind room for the IP header,
/// so they turn into tunnel packets in place.
/// </summary>
internal abstract class DatagramNat : IEgressProtocol
{
    protected readonly IPacketSink Sink;
    protected readonly EgressCounters Counters;
    protected readonly EgressPolicy Policy;
    private readonly TimeProvider _time;
    private readonly NatTable<Flow> _table;
    private readonly long _idleTicks;
    private readonly ITimer _sweep;
    private readonly int _mtu;
    private int _disposed;

    protected DatagramNat(IPacketSink sink, EgressOptions options, EgressCounters counters, EgressPolicy policy, int mtu,
        TimeSpan idleTimeout, int maxPerPeer, int max)
    {
        Sink = sink;
        Counters = counters;
        Policy = policy;
        _mtu = mtu;
        _time = options.TimeProvider;
        _table = new NatTable<Flow>(maxPerPeer, max);
        _idleTicks = TicksOf(idleTimeout);
        // One sweep for every mapping: a flow lives between idleTimeout and idleTimeout + period.
        var period = TimeSpan.FromTicks(Math.Clamp(idleTimeout.Ticks / 4, TimeSpan.TicksPerSecond, 30 * TimeSpan.TicksPerSecond));
        _sweep = _time.CreateTimer(static s => ((DatagramNat)s!).Sweep(), this, period, period);
    }

    /// <summary>Where a received datagram is put in the flow's buffer: after the room its headers need.</summary>
    protected abstract int ReceiveOffset { get; }

    /// <summary>Header bytes between the IP header and the received data (UDP: 8; ICMP: 0, the socket returns the ICMP header).</summary>
    protected abstract int TransportHeader { get; }

    /// <summary>Opens the host socket of a new mapping; null when the host does not allow one (already counted).</summary>
    protected abstract Socket? OpenSocket(bool ipv4);

    /// <summary>Turns a received datagram (at flow.Buffer[ReceiveOffset..], sender in flow.From) into a tunnel packet.</summary>
    protected abstract void OnReceived(Flow flow, int length);

    protected abstract void OnOpened();
    protected abstract void OnClosed();
    protected abstract void OnLimited();

    public abstract void OnPacket(WgKey fromPeer, ReadOnlySpan<byte> ipPacket);

    /// <summary>Largest datagram that still fits the tunnel MTU with an IP header and <paramref name="transportHeader"/> bytes in front.</summary>
    protected int MaxPayload(bool ipv4, int transportHeader) => _mtu - PacketWriter.IpHeaderLength(ipv4) - transportHeader;

    public int FlowCount => _table.Count;

    protected long Now => _time.GetTimestamp();
    protected long TicksOf(TimeSpan t) => (long)(t.TotalSeconds * _time.TimestampFrequency);

    /// <summary>The mapping for <paramref name="key"/>, opened if needed; null when a limit bites or no socket can be had.</summary>
    protected Flow? GetOrOpen(in FlowKey key)
    {
        if (_table.TryGet(key, out var flow)) return flow;
        if (!_table.HasRoom(key.Peer)) { OnLimited(); return null; }
        var socket = OpenSocket(key.IsIPv4);
        if (socket is null) return null;
        int bufferSize = ReceiveOffset + MaxPayload(key.IsIPv4, TransportHeader) + 1;   // one more byte tells an oversized datagram
        flow = new Flow(key, Now, socket, ArrayPool<byte>.Shared.Rent(bufferSize), bufferSize);
        switch (_table.TryAdd(flow, out var existing))
        {
            case NatTable<Flow>.AddResult.Added:
                OnOpened();
                _ = ReceiveLoop(flow);
                return flow;
            case NatTable<Flow>.AddResult.Exists:
                flow.Close();
                ArrayPool<byte>.Shared.Return(flow.Buffer);
                return existing;
            case NatTable<Flow>.AddResult.Limited:
                OnLimited();
                goto default;
            default:
                flow.Close();
                ArrayPool<byte>.Shared.Return(flow.Buffer);
                return null;
        }
    }

    /// <summary>Sends one datagram from the mapping's socket; a full send buffer or an unreachable network drops it (UDP semantics).</summary>
    protected void Send(Flow flow, ReadOnlySpan<byte> destination, ushort port, ReadOnlySpan<byte> data)
    {
        flow.Touch(Now);
        lock (flow.SendLock)
        {
            SocketAddressBytes.Set(flow.SendTo, destination, port);
            try { flow.Socket.SendTo(data, SocketFlags.None, flow.SendTo); }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
        }
    }

    private async Task ReceiveLoop(Flow flow)
    {
        var memory = flow.Buffer.AsMemory(ReceiveOffset, flow.BufferSize - ReceiveOffset);
        try
        {
            while (true)
            {
                int n;
                try
                {
                    n = await flow.Socket.ReceiveFromAsync(memory, SocketFlags.None, flow.From).ConfigureAwait(false);
                }
                catch (SocketException e) when (!flow.Closed && e.SocketErrorCode is SocketError.MessageSize
                    or SocketError.ConnectionReset or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
                {
                    continue;   // an oversized datagram or an ICMP error report: drop it, keep the mapping
                }
                if (n >= memory.Length) continue;            // larger than the tunnel MTU allows: dropped
                if (!Policy.IsAllowed(SocketAddressBytes.Address(flow.From))) continue;   // senders the peers may not reach
                flow.Touch(Now);
                OnReceived(flow, n);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Closed by the sweep or dispose, or a socket error that ends the mapping.
        }
        finally
        {
            if (_table.Remove(flow)) { flow.Close(); OnClosed(); }
            ArrayPool<byte>.Shared.Return(flow.Buffer);
        }
    }

    /// <summary>Closes the mappings idle for longer than the timeout.</summary>
    public void Sweep()
    {
        foreach (var flow in _table.RemoveIdle(Now - _idleTicks))
        {
            flow.Close();
            OnClosed();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _sweep.Dispose();
        foreach (var flow in _table.Close())
        {
            flow.Close();
            OnClosed();
        }
    }

    /// <summary>One mapping: its host socket, receive buffer (owned by the receive loop) and the send scratch address.</summary>
    protected sealed class Flow : NatFlow
    {
        private int _closed;

        public Flow(FlowKey key, long now, Socket socket, byte[] buffer, int bufferSize) : base(key, now)
        {
            Socket = socket;
            Buffer = buffer;
            BufferSize = bufferSize;
            SendTo = SocketAddressBytes.Create(key.IsIPv4);
            From = SocketAddressBytes.Create(key.IsIPv4);
        }

        public Socket Socket { get; }
        public byte[] Buffer { get; }
        public int BufferSize { get; }
        public SocketAddress SendTo { get; }
        public SocketAddress From { get; }
        public object SendLock { get; } = new();
        public bool Closed => Volatile.Read(ref _closed) != 0;

        public override void Close()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0) Socket.Dispose();
        }
    }

    /// <summary>A datagram socket of the family bound to an ephemeral port on all addresses, non-blocking for sends.</summary>
    protected static Socket BindDatagram(Socket socket, bool ipv4)
    {
        try
        {
            socket.Blocking = false;
            socket.Bind(new IPEndPoint(ipv4 ? IPAddress.Any : IPAddress.IPv6Any, 0));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
