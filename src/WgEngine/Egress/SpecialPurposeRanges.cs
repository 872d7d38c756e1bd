using WgEngine.Net;

namespace WgEngine.Egress;

/// <summary>
/// The address ranges the userspace egress refuses by default: every entry of the IANA "IPv4
/// Special-Purpose Address Registry" and "IPv6 Special-Purpose Address Registry"
/// (https://www.iana.org/assignments/iana-ipv4-special-registry, .../iana-ipv6-special-registry,
/// RFC 6890) whose "Globally Reachable" column is False, plus multicast (224.0.0.0/4, ff00::/8, from the
/// multicast registries) and the deprecated site-local fec0::/10 (RFC 3879). The registries' globally
/// reachable entries inside a refused block (e.g. 192.0.0.9/32 inside 192.0.0.0/24) are listed as
/// exceptions: the policy takes the most specific entry.
/// </summary>
internal static class SpecialPurposeRanges
{
    /// <summary>Refused unless an operator rule at least as specific allows them.</summary>
    public static readonly IReadOnlyList<IpPrefix> NotGloballyReachable = Parse(
        // IPv4 registry, Globally Reachable = False.
        "0.0.0.0/8",            // "this network" (RFC 791)
        "10.0.0.0/8",           // private use (RFC 1918)
        "100.64.0.0/10",        // shared address space, carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",          // loopback (RFC 1122)
        "169.254.0.0/16",       // link local (RFC 3927), includes cloud metadata 169.254.169.254
        "172.16.0.0/12",        // private use (RFC 1918)
        "192.0.0.0/24",         // IETF protocol assignments (RFC 6890), incl. DS-Lite 192.0.0.0/29, 192.0.0.8/32, 192.0.0.170-171/32
        "192.0.2.0/24",         // documentation TEST-NET-1 (RFC 5737)
        "192.168.0.0/16",       // private use (RFC 1918)
        "198.18.0.0/15",        // benchmarking (RFC 2544)
        "198.51.100.0/24",      // documentation TEST-NET-2 (RFC 5737)
        "203.0.113.0/24",       // documentation TEST-NET-3 (RFC 5737)
        "224.0.0.0/4",          // multicast (RFC 5771)
        "240.0.0.0/4",          // reserved (RFC 1112), includes limited broadcast 255.255.255.255/32 (RFC 919)
        // IPv6 registry, Globally Reachable = False.
        "::/128",               // unspecified (RFC 4291)
        "::1/128",              // loopback (RFC 4291)
        "64:ff9b:1::/48",       // local-use IPv4/IPv6 translation (RFC 8215)
        "100::/64",             // discard-only (RFC 6666)
        "100:0:0:1::/64",       // dummy IPv6 prefix (RFC 9780)
        "2001::/23",            // IETF protocol assignments (RFC 2928), incl. benchmarking 2001:2::/48, ORCHID 2001:10::/28
        "2001:db8::/32",        // documentation (RFC 3849)
        "3fff::/20",            // documentation (RFC 9637)
        "5f00::/16",            // segment routing SIDs (RFC 9602)
        "fc00::/7",             // unique local (RFC 4193)
        "fe80::/10",            // link-local unicast (RFC 4291)
        "fec0::/10",            // site-local, deprecated (RFC 3879)
        "ff00::/8");            // multicast (RFC 4291)

    /// <summary>Globally reachable entries of the registries inside the blocks above.</summary>
    public static readonly IReadOnlyList<IpPrefix> GloballyReachableInside = Parse(
        "192.0.0.9/32",         // port control protocol anycast (RFC 7723)
        "192.0.0.10/32",        // traversal using relays around NAT anycast (RFC 8155)
        "2001:1::1/128",        // port control protocol anycast (RFC 7723)
        "2001:1::2/128",        // TURN anycast (RFC 8155)
        "2001:1::3/128",        // DNS-SD service registration protocol anycast (RFC 9665)
        "2001:3::/32",          // AMT (RFC 7450)
        "2001:4:112::/48",      // AS112-v6 (RFC 7535)
        "2001:20::/28",         // ORCHIDv2 (RFC 7343)
        "2001:30::/28");        // drone remote ID protocol entity tags (RFC 9374)

    private static IpPrefix[] Parse(params string[] prefixes) => [.. prefixes.Select(IpPrefix.Parse)];
}
