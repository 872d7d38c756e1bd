using System.Net;
using WgEngine.Crypto;
using WgEngine.Net;

namespace WgEngine.Uapi;

/// <summary>
/// A parsed `set=1` request: the device section, then one entry per `public_key=` section, in order.
/// The same key may appear in several sections; they are applied one after the other.
/// </summary>
internal sealed class UapiSetRequest : IDisposable
{
    /// <summary>New private key; null = unchanged. An all-zero key in the request is kept as <see cref="ClearPrivateKey"/>.</summary>
    public WgPrivateKey? PrivateKey { get; set; }
    public bool ClearPrivateKey { get; set; }
    public int? ListenPort { get; set; }
    public uint? Fwmark { get; set; }
    public bool ReplacePeers { get; set; }
    public List<UapiPeerChange> Peers { get; } = new();

    public void Dispose() => PrivateKey?.Dispose();
}

/// <summary>One `public_key=` section of a set request, folded in line order.</summary>
internal sealed class UapiPeerChange
{
    public UapiPeerChange(WgKey publicKey) => PublicKey = publicKey;

    public WgKey PublicKey { get; }
    /// <summary>Do not create the peer if it does not exist yet.</summary>
    public bool UpdateOnly { get; set; }
    /// <summary>Remove the peer; later lines of the section are then validated but ignored.</summary>
    public bool Remove { get; set; }
    /// <summary>New preshared key; all zeros means "none". Null = unchanged.</summary>
    public WgKey? PresharedKey { get; set; }
    public IPEndPoint? Endpoint { get; set; }
    public int? PersistentKeepalive { get; set; }
    /// <summary>Drop the existing allowed IPs before adding <see cref="AllowedIPs"/>.</summary>
    public bool ReplaceAllowedIPs { get; set; }
    public List<IpPrefix> AllowedIPs { get; } = new();
}
