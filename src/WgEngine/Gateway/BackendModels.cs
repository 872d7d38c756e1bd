using System.Net;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Net;

namespace WgEngine.Gateway;

/// <summary>Where decrypted packets that are neither for the gateway nor for another peer go.</summary>
public enum EgressMode { None, Userspace, Tun }

/// <summary>The interface (device) configuration a backend is started with.</summary>
internal sealed class InterfaceConfig
{
    public required WgPrivateKey PrivateKey { get; init; }
    /// <summary>UDP port; 0 lets the OS pick one (the backend reports the real one).</summary>
    public int ListenPort { get; init; } = 51820;
    /// <summary>The gateway's own tunnel addresses (e.g. 10.8.0.1/24); it answers ICMP echo on them.</summary>
    public IReadOnlyList<IpPrefix> Addresses { get; init; } = [];
    public EgressMode Egress { get; init; } = EgressMode.Userspace;
    /// <summary>Limits and allow list of the userspace egress; null = defaults (with this config's TimeProvider).</summary>
    public EgressOptions? EgressOptions { get; init; }
    /// <summary>The server's name; with <see cref="EgressMode.Tun"/> also the TUN interface's (at most 15 bytes on Linux).</summary>
    public string? Name { get; init; }
    /// <summary>IP address to bind the UDP socket to; null = all addresses (IPv6 dual-stack where available).</summary>
    public IPAddress? BindAddress { get; init; }
    /// <summary>The tunnel MTU: packets are padded up to it (never beyond) and a TUN egress gets it.</summary>
    public int Mtu { get; init; } = DefaultMtu;
    /// <summary>wg-quick's default for IPv4 and IPv6 underlay (1500 - 80).</summary>
    public const int DefaultMtu = 1420;
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    /// <summary>Refuse peer-to-peer traffic unless a rule of the sender allows it (client isolation).</summary>
    public bool PeerIsolation { get; init; }
    /// <summary>Told (on a packet thread: return at once) when a peer has used up its quota.</summary>
    public Action<WgKey>? QuotaExhausted { get; init; }
    /// <summary>Told about conditions an operator should fix (e.g. no unprivileged ICMP sockets for the egress); null = not logged.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>The ordered rules of each tag (peers carry tags).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<Policy.AclRule>>? TagRules { get; init; }
}
