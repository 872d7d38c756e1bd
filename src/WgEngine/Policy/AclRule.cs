using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using WgEngine.Net;

namespace WgEngine.Policy;

/// <summary>The protocol an <see cref="AclRule"/> matches.</summary>
public enum AclProtocol : byte { Any = 0, Icmp = 1, Tcp = 6, Udp = 17 }

/// <summary>
/// One ordered access rule of a peer or a tag: allow or deny traffic from the peer to a destination
/// prefix, optionally only one protocol and a destination port range. Text form (as the cmdlets and
/// the config file take it): <c>allow|deny &lt;CIDR|any&gt; [tcp|udp|icmp|any] [port|low-high]</c>,
/// e.g. <c>allow 10.1.0.5/32 tcp 443</c>, <c>deny any</c>. ICMP covers ICMPv6 for IPv6 prefixes; a port
/// range needs tcp or udp.
/// </summary>
public readonly struct AclRule : IEquatable<AclRule>
{
    private readonly UInt128 _network, _mask;   // IPv4 in the low 32 bits

    public AclRule(bool allow, IpPrefix destination, AclProtocol protocol = AclProtocol.Any, int portLow = 0, int portHigh = 65535)
    {
        if (portLow < 0 || portHigh > 65535 || portLow > portHigh)
            throw new ArgumentOutOfRangeException(nameof(portLow), "A port range is 0-65535, low to high.");
        if (protocol is not (AclProtocol.Tcp or AclProtocol.Udp) && (portLow != 0 || portHigh != 65535))
            throw new ArgumentException("A port range needs tcp or udp.", nameof(protocol));
        Allow = allow;
        Destination = destination.Network;
        Protocol = protocol;
        PortLow = (ushort)portLow;
        PortHigh = (ushort)portHigh;
        IsIPv4 = destination.IsIPv4;
        Span<byte> b = stackalloc byte[16];
        destination.Network.Address.TryWriteBytes(b, out int n);
        int bits = destination.Bits, width = n * 8;
        _network = n == 4 ? BinaryPrimitives.ReadUInt32BigEndian(b) : BinaryPrimitives.ReadUInt128BigEndian(b);
        _mask = bits == 0 ? UInt128.Zero : (UInt128.MaxValue << (128 - bits)) >> (128 - width);
    }

    public bool Allow { get; }
    public IpPrefix Destination { get; }
    public AclProtocol Protocol { get; }
    public ushort PortLow { get; }
    public ushort PortHigh { get; }
    public bool IsIPv4 { get; }

    /// <summary>Whether the rule covers a packet (destination as a number, IPv4 in the low bits).</summary>
    internal bool Matches(bool v4, UInt128 destination, byte protocol, int port) =>
        v4 == IsIPv4 && (destination & _mask) == _network
        && (Protocol == AclProtocol.Any || (byte)Protocol == protocol || (Protocol == AclProtocol.Icmp && protocol == 58))
        && (port < 0 ? PortLow == 0 && PortHigh == 65535 : port >= PortLow && port <= PortHigh);

    /// <summary>Parses the text form; "any" as the destination means both families (two rules).</summary>
    public static IReadOnlyList<AclRule> Parse(string text) =>
        TryParse(text, out var rules, out var error) ? rules : throw new FormatException(error);

    public static bool TryParse(string? text, [NotNullWhen(true)] out IReadOnlyList<AclRule>? rules, [NotNullWhen(false)] out string? error)
    {
        rules = null;
        var parts = (text ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length is < 2 or > 4 || parts[0].ToLowerInvariant() is not ("allow" or "deny"))
        {
            error = $"ACL rule '{Clip(text)}' is not 'allow|deny <CIDR|any> [tcp|udp|icmp|any] [port|low-high]'.";
            return false;
        }
        bool allow = parts[0].Equals("allow", StringComparison.OrdinalIgnoreCase);
        var protocol = AclProtocol.Any;
        if (parts.Length > 2 && (int.TryParse(parts[2], out _) || !Enum.TryParse(parts[2], ignoreCase: true, out protocol) || !Enum.IsDefined(protocol)))
        {
            error = $"ACL rule '{Clip(text)}': protocol '{Clip(parts[2])}' is not tcp, udp, icmp or any.";
            return false;
        }
        int low = 0, high = 65535;
        if (parts.Length == 4)
        {
            var range = parts[3].Split('-');
            if (protocol is not (AclProtocol.Tcp or AclProtocol.Udp) || range.Length > 2
                || !ushort.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out var l)
                || !ushort.TryParse(range[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var h) || l > h)
            {
                error = $"ACL rule '{Clip(text)}': '{Clip(parts[3])}' is not a port or low-high range of tcp or udp.";
                return false;
            }
            (low, high) = (l, h);
        }
        IpPrefix[] destinations;
        if (parts[1].Equals("any", StringComparison.OrdinalIgnoreCase)) destinations = [IpPrefix.Parse("0.0.0.0/0"), IpPrefix.Parse("::/0")];
        else if (IpPrefix.TryParse(parts[1], out var p)) destinations = [p];
        else
        {
            error = $"ACL rule '{Clip(text)}': '{Clip(parts[1])}' is not a CIDR prefix or 'any'.";
            return false;
        }
        rules = [.. destinations.Select(d => new AclRule(allow, d, protocol, low, high))];
        error = null;
        return true;
    }

    public override string ToString()
    {
        var s = $"{(Allow ? "allow" : "deny")} {Destination}";
        if (Protocol != AclProtocol.Any) s += " " + Protocol.ToString().ToLowerInvariant();
        if (PortLow != 0 || PortHigh != 65535) s += PortLow == PortHigh ? $" {PortLow}" : $" {PortLow}-{PortHigh}";
        return s;
    }

    private static string Clip(string? s) => s is null ? "" : s.Length > 80 ? s[..80] + "..." : s;

    public bool Equals(AclRule other) => Allow == other.Allow && Destination == other.Destination && Protocol == other.Protocol
        && PortLow == other.PortLow && PortHigh == other.PortHigh;
    public override bool Equals(object? obj) => obj is AclRule r && Equals(r);
    public override int GetHashCode() => HashCode.Combine(Allow, Destination, Protocol, PortLow, PortHigh);
    public static bool operator ==(AclRule left, AclRule right) => left.Equals(right);
    public static bool operator !=(AclRule left, AclRule right) => !left.Equals(right);
}
