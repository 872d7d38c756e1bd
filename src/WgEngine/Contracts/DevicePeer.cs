using System.Net;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Contracts;

/// <summary>
/// A peer as an external device reports it: the UAPI get answer (Uapi backend) and the kernel's
/// WG_CMD_GET_DEVICE dump (Kernel backend) carry the same fields, so both parse into this one type and
/// share its mapping to the facade's models.
/// </summary>
internal sealed class DevicePeer
{
    public required WgKey PublicKey { get; init; }
    public WgKey? PresharedKey { get; set; }
    public IPEndPoint? Endpoint { get; set; }
    public DateTimeOffset? LastHandshake { get; set; }
    public long TxBytes { get; set; }
    public long RxBytes { get; set; }
    public int PersistentKeepalive { get; set; }
    public List<IpPrefix> AllowedIPs { get; } = [];

    /// <summary>The peer's configuration, to adopt a device's peers (IPeerImport.ExportPeers).</summary>
    public PeerConfig ToConfig() => new()
    {
        PublicKey = PublicKey, AllowedIPs = [.. AllowedIPs], PresharedKey = PresharedKey,
        Endpoint = Endpoint, PersistentKeepalive = PersistentKeepalive,
    };

    /// <summary>What Get-WgPeer shows: the preshared key only as HasPresharedKey.</summary>
    public PeerStatus ToStatus() => new()
    {
        PublicKey = PublicKey, AllowedIPs = [.. AllowedIPs], Endpoint = Endpoint, LatestHandshake = LastHandshake,
        ReceivedBytes = RxBytes, SentBytes = TxBytes, PersistentKeepalive = PersistentKeepalive,
        HasPresharedKey = PresharedKey is not null,
    };

    /// <summary>The device's counters: the sum over its peers.</summary>
    public static InterfaceStats SumStats(IEnumerable<DevicePeer> peers)
    {
        long rx = 0, tx = 0;
        foreach (var p in peers) { rx += p.RxBytes; tx += p.TxBytes; }
        return new InterfaceStats(rx, tx, 0);
    }
}
