using System.Threading.Channels;
using WgEngine.Contracts;

namespace WgEngine.Gateway;

/// <summary>What happened to a peer (<see cref="VPNServer.PeerEvent"/>).</summary>
public enum PeerEventKind { Created, Removed, Enabled, Disabled, Expired }

/// <summary>One peer life-cycle event: the peer as it was right after the change. No key material but the public key.</summary>
public sealed record PeerEventArgs(string Server, PeerEventKind Kind, PeerStatus Peer, DateTimeOffset Time);

/// <summary>
/// Peer life-cycle events for front ends (webhooks in the host, PowerShell engine events in the module).
/// They never block the engine: a change only enqueues its event (an unbounded channel, no lock held by
/// a handler), and one background loop per server calls the handlers in order, each call guarded so
/// that a failing handler cannot stop the others. No loop runs until someone subscribes.
/// </summary>
public sealed partial class VPNServer
{
    private Channel<PeerEventArgs>? _events;
    private event Action<PeerEventArgs>? PeerEventCore;

    /// <summary>Raised after a peer is created (AddPeer, AddPeers, a UAPI set), removed, enabled, disabled or expired,
    /// on a background thread, in order. Handlers must not assume they run under any lock.</summary>
    public event Action<PeerEventArgs>? PeerEvent
    {
        add
        {
            lock (_lock)
            {
                PeerEventCore += value;
                if (_events is null)
                {
                    _events = Channel.CreateUnbounded<PeerEventArgs>(new UnboundedChannelOptions { SingleReader = true });
                    _ = Task.Run(() => DispatchAsync(_events.Reader));
                }
            }
        }
        remove { lock (_lock) PeerEventCore -= value; }
    }

    /// <summary>Called with the lock held: a write to a channel, nothing else.</summary>
    private void Raise(PeerEventKind kind, PeerStatus peer)
    {
        _events?.Writer.TryWrite(new PeerEventArgs(Name, kind, peer, _time.GetUtcNow()));
    }

    private async Task DispatchAsync(ChannelReader<PeerEventArgs> reader)
    {
        await foreach (var e in reader.ReadAllAsync().ConfigureAwait(false))
        {
            Action<PeerEventArgs>? handlers;
            lock (_lock) handlers = PeerEventCore;
            if (handlers is null) continue;
            foreach (Action<PeerEventArgs> h in handlers.GetInvocationList())
            {
                try { h(e); }
                catch (Exception) { }   // a front end's failure is its own; the engine and the other handlers go on
            }
        }
    }

    private void CompleteEvents() => _events?.Writer.TryComplete();
}
