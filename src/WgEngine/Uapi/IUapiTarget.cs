using System.Net;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Uapi;

/// <summary>
/// What a UAPI server drives: the owner of the device's configuration (the VPNServer facade), so that
/// changes made over the socket go through the same policy and peer table as the cmdlets.
/// </summary>
internal interface IUapiTarget
{
    /// <summary>A consistent snapshot for `get=1`.</summary>
    UapiDeviceState GetUapiState();

    /// <summary>Applies a parsed `set=1` request in order; returns 0 or a negative errno (UapiErrno).</summary>
    int ApplyUapi(UapiSetRequest request);
}

/// <summary>The device as `get=1` reports it. The private key is only read by the writer, never logged.</summary>
internal sealed class UapiDeviceState
{
    public WgPrivateKey? PrivateKey { get; init; }
    public int ListenPort { get; init; }
    public uint Fwmark { get; init; }
    public IReadOnlyList<UapiPeerState> Peers { get; init; } = [];
}

internal sealed class UapiPeerState
{
    public required WgKey PublicKey { get; init; }
    /// <summary>Null = none (sent as 64 zeros, as wireguard-go does).</summary>
    public WgKey? PresharedKey { get; init; }
    public IPEndPoint? Endpoint { get; init; }
    public DateTimeOffset? LastHandshake { get; init; }
    public long TxBytes { get; init; }
    public long RxBytes { get; init; }
    public int PersistentKeepalive { get; init; }
    public IReadOnlyList<IpPrefix> AllowedIPs { get; init; } = [];
}
