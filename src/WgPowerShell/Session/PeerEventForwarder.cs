using System.Management.Automation;
using System.Runtime.CompilerServices;
using WgEngine.Gateway;
using WgPowerShell.Models;

namespace WgPowerShell.Session;

/// <summary>
/// An in-process server's peer events as PowerShell engine events of the runspace that started it:
/// WireGuardGateway.PeerCreated, .PeerRemoved, .PeerEnabled, .PeerDisabled, .PeerExpired, with the
/// WgPeer as $Event.SourceArgs[0] and the server's name as $Event.Sender. GenerateEvent only queues:
/// the engine's event loop never waits for the runspace. Events nobody reads stay in the runspace's
/// queue, so the queue keeps only the newest <see cref="MaxUnread"/> of them (<see cref="UnreadPeerEvents"/>).
/// </summary>
internal static class PeerEventForwarder
{
    public const string Prefix = "WireGuardGateway.Peer";

    /// <summary>
    /// Unread peer events one runspace's queue keeps. Without a bound, a session that pipes 100,000 peers
    /// into Add-WgPeer and never calls Get-Event would hold 100,000 events (about 1 KB each) for as long
    /// as it lives. A subscriber with -Action takes events before the queue, so it sees every one.
    /// </summary>
    public const int MaxUnread = 1000;

    private static readonly ConditionalWeakTable<PSEventManager, UnreadPeerEvents> Backlogs = new();

    public static void Forward(VPNServer server, PSEventManager events)
    {
        Backlogs.GetValue(events, e => new UnreadPeerEvents(e.ReceivedEvents, MaxUnread));
        server.PeerEvent += e => events.GenerateEvent(Prefix + e.Kind, e.Server, [WgPeer.From(e.Server, e.Peer)], null);
    }
}

/// <summary>
/// Bounds the peer events waiting in one runspace's event queue: once more than the bound have arrived
/// unread, the oldest (by event identifier, that is in the order the engine raised them) leave the
/// queue. GenerateEvent adds events to the queue from the thread pool, so they may arrive out of order;
/// ordering by identifier keeps exactly the newest ones whatever the order of arrival. Events that
/// Get-Event/Remove-Event already took are remembered until they are among the oldest (a bounded set).
/// </summary>
internal sealed class UnreadPeerEvents
{
    private readonly PSEventArgsCollection _queue;
    private readonly int _max;
    private readonly PriorityQueue<PSEventArgs, int> _ours = new();

    public UnreadPeerEvents(PSEventArgsCollection queue, int max)
    {
        _queue = queue;
        _max = max;
        queue.PSEventReceived += OnReceived;
    }

    // Raised by the queue's Add, which PowerShell calls holding SyncRoot (the lock Get-Event and
    // Remove-Event take); taken again here so that the removal does not depend on that.
    private void OnReceived(object sender, PSEventArgs e)
    {
        if (e.SourceIdentifier is null || !e.SourceIdentifier.StartsWith(PeerEventForwarder.Prefix, StringComparison.Ordinal)) return;
        lock (_queue.SyncRoot)
        {
            _ours.Enqueue(e, e.EventIdentifier);
            while (_ours.Count > _max)
            {
                var oldest = _ours.Dequeue();
                for (int i = 0; i < _queue.Count; i++)
                {
                    if (!ReferenceEquals(_queue[i], oldest)) continue;
                    _queue.RemoveAt(i);
                    break;
                }
            }
        }
    }
}
