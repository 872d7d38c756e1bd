using System.Net;
using System.Net.NetworkInformation;
using WgEngine.Net;

namespace WgEngine.Egress;

/// <summary>The operator's egress rules: exceptions to and additions to the built-in protections.</summary>
/// <param name="Allow">Destinations opened (an exception opens a built-in range only where it is at least as specific).</param>
/// <param name="Deny">Destinations refused on top of the built-in ones.</param>
/// <param name="Unprotected">True drops the built-in protections (special-purpose ranges and the host's own addresses).</param>
public sealed record EgressRules(IReadOnlyList<IpPrefix> Allow, IReadOnlyList<IpPrefix> Deny, bool Unprotected = false)
{
    public static readonly EgressRules Default = new([], [], false);

    public static EgressRules From(EgressOptions options) => new(options.Allow ?? [], options.Deny ?? [], options.Unprotected);
}

/// <summary>
/// Which destinations the userspace egress may dial from the host. One longest-prefix table decides:
/// <list type="number">
/// <item>the built-in refusals: the special-purpose ranges that are not globally reachable
/// (<see cref="SpecialPurposeRanges"/>: loopback, link-local and cloud metadata, RFC 1918, 100.64.0.0/10,
/// fc00::/7, documentation, multicast, ...) and every address of the host's own interfaces (/32, /128);</item>
/// <item>the operator's <see cref="EgressRules.Allow"/> exceptions and <see cref="EgressRules.Deny"/> rules.</item>
/// </list>
/// The most specific entry wins; on equal prefixes an operator rule beats a built-in one and a deny beats
/// an allow; no entry: allowed (the internet). So `Allow 10.1.0.0/16` opens that office subnet,
/// `Allow 0.0.0.0/0` opens nothing the built-ins refuse, and only <see cref="EgressRules.Unprotected"/>
/// drops the built-ins altogether. Rules change at runtime (<see cref="Update"/>): the table is rebuilt and
/// swapped in one write, so readers see the old or the new rules, never a mix. The host's addresses are
/// re-read when the OS reports an address change. Lookups take no lock and allocate nothing.
/// </summary>
internal sealed class EgressPolicy : IDisposable
{
    private static readonly object DenyVerdict = new(), AllowVerdict = new();
    private readonly Func<IEnumerable<IPAddress>> _hostAddresses;
    private readonly Lock _rebuild = new();
    private readonly bool _watching;
    private AllowedIps<object> _table = new();
    private EgressRules _rules;
    private IPAddress[] _lastHostAddresses = [];

    /// <summary>With an allow list only (the rules before deny lists existed; tests).</summary>
    public EgressPolicy(IReadOnlyList<IpPrefix>? allow) : this(new EgressRules(allow ?? [], [])) { }

    /// <param name="hostAddresses">The host's own addresses; null = every interface's, re-read on address changes.</param>
    public EgressPolicy(EgressRules rules, Func<IEnumerable<IPAddress>>? hostAddresses = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        _rules = rules;
        _hostAddresses = hostAddresses ?? InterfaceAddresses;
        Rebuild();
        if (hostAddresses is null)
        {
            try
            {
                NetworkChange.NetworkAddressChanged += OnAddressChanged;
                _watching = true;
            }
            catch (Exception e) when (e is NetworkInformationException or PlatformNotSupportedException) { }
        }
    }

    /// <summary>The rules in force.</summary>
    public EgressRules Rules => Volatile.Read(ref _rules);

    /// <summary>Replaces the operator's rules; the next packet is judged by the new ones.</summary>
    public void Update(EgressRules rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        lock (_rebuild)
        {
            Volatile.Write(ref _rules, rules);
            Rebuild();
        }
    }

    /// <summary>Re-reads the host's own addresses (also done when the OS reports an address change).</summary>
    public void RefreshHostAddresses()
    {
        lock (_rebuild) Rebuild();
    }

    /// <summary>The decision for a raw 4- or 16-byte address from a packet header, without allocating.
    /// An IPv4-mapped IPv6 address is judged as the IPv4 address.</summary>
    public bool IsAllowed(ReadOnlySpan<byte> destination)
    {
        if (destination.Length == 16 && IsV4Mapped(destination)) destination = destination.Slice(12);
        if (destination.Length is not (4 or 16)) return false;
        return !ReferenceEquals(Volatile.Read(ref _table).Lookup(destination), DenyVerdict);
    }

    public bool IsAllowed(IPAddress destination)
    {
        Span<byte> b = stackalloc byte[16];
        if (destination.IsIPv4MappedToIPv6) destination = destination.MapToIPv4();
        return destination.TryWriteBytes(b, out int n) && IsAllowed(b.Slice(0, n));
    }

    private void Rebuild()
    {
        var rules = Volatile.Read(ref _rules);
        var table = new AllowedIps<object>();
        if (!rules.Unprotected)
        {
            foreach (var p in SpecialPurposeRanges.NotGloballyReachable) table.Insert(p, DenyVerdict);
            foreach (var p in SpecialPurposeRanges.GloballyReachableInside) table.Insert(p, AllowVerdict);
            foreach (var a in SafeHostAddresses())
            {
                var address = a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;
                if (address.AddressFamily is System.Net.Sockets.AddressFamily.InterNetwork or System.Net.Sockets.AddressFamily.InterNetworkV6)
                    table.Insert(new IpPrefix(WithoutScope(address), address.GetAddressBytes().Length * 8), DenyVerdict);
            }
        }
        // Operator rules after the built-ins, denies last: on an equal prefix the later insert wins.
        foreach (var p in rules.Allow) table.Insert(p, AllowVerdict);
        foreach (var p in rules.Deny) table.Insert(p, DenyVerdict);
        Volatile.Write(ref _table, table);
    }

    /// <summary>The host's addresses; when the OS fails to list them (e.g. while interfaces change), the last list read.</summary>
    private IPAddress[] SafeHostAddresses()
    {
        try { return _lastHostAddresses = [.. _hostAddresses()]; }
        catch (NetworkInformationException) { return _lastHostAddresses; }
    }

    private static IPAddress WithoutScope(IPAddress a) => new(a.GetAddressBytes());

    private static IEnumerable<IPAddress> InterfaceAddresses() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(static i => i.GetIPProperties().UnicastAddresses)
            .Select(static u => u.Address);

    private void OnAddressChanged(object? sender, EventArgs e) => RefreshHostAddresses();

    private static bool IsV4Mapped(ReadOnlySpan<byte> a) =>
        a.Length == 16 && a.Slice(0, 10).IndexOfAnyExcept((byte)0) < 0 && a[10] == 0xFF && a[11] == 0xFF;

    public void Dispose()
    {
        if (_watching) NetworkChange.NetworkAddressChanged -= OnAddressChanged;
    }
}
