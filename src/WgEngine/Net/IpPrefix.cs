using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace WgEngine.Net;

/// <summary>An IPv4 or IPv6 network in CIDR form (address bits past the prefix are kept as given).</summary>
public readonly struct IpPrefix : IEquatable<IpPrefix>
{
    public IpPrefix(IPAddress address, int bits)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            throw new ArgumentException("Only IPv4 and IPv6 addresses are supported.", nameof(address));
        if (bits < 0 || bits > max)
            throw new ArgumentOutOfRangeException(nameof(bits), $"Prefix length must be between 0 and {max}.");
        Address = address;
        Bits = bits;
    }

    public IPAddress Address { get; }
    public int Bits { get; }
    public bool IsIPv4 => Address.AddressFamily == AddressFamily.InterNetwork;
    public int MaxBits => IsIPv4 ? 32 : 128;

    /// <summary>The prefix with host bits cleared, e.g. 10.8.0.1/24 -> 10.8.0.0/24.</summary>
    public IpPrefix Network => new(Mask(Address, Bits), Bits);

    public static IpPrefix Parse(string text) =>
        TryParse(text, out var p) ? p : throw new FormatException($"'{text}' is not an IP address or CIDR prefix (e.g. 10.8.0.0/24 or fd00::/64).");

    /// <summary>Parses "a.b.c.d/n", "x::y/n", or a bare address (a host prefix: /32 or /128).</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out IpPrefix prefix)
    {
        prefix = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        int slash = text.IndexOf('/');
        string addrPart = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addrPart, out var addr)) return false;
        if (addr.AddressFamily == AddressFamily.InterNetworkV6 && addr.ScopeId != 0) return false;
        if (addr.IsIPv4MappedToIPv6) addr = addr.MapToIPv4();
        // IPAddress.TryParse accepts "10" or "10.8"; CIDR text must be a full dotted quad.
        if (addr.AddressFamily == AddressFamily.InterNetwork && addrPart.Count(c => c == '.') != 3) return false;
        int max = addr.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int bits = max;
        if (slash >= 0)
        {
            var bitsText = text.AsSpan(slash + 1);
            if (bitsText.Length == 0 || bitsText.Length > 3 || !bitsText.ToString().All(char.IsAsciiDigit)) return false;
            bits = int.Parse(bitsText);
            if (bits > max) return false;
        }
        prefix = new IpPrefix(addr, bits);
        return true;
    }

    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != Address.AddressFamily) return false;
        return Mask(address, Bits).Equals(Mask(Address, Bits));
    }

    /// <summary>True when the two prefixes share at least one address.</summary>
    public bool Overlaps(IpPrefix other)
    {
        if (other.IsIPv4 != IsIPv4) return false;
        int bits = Math.Min(Bits, other.Bits);
        return Mask(Address, bits).Equals(Mask(other.Address, bits));
    }

    public static IPAddress Mask(IPAddress address, int bits)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int len);
        b = b[..len];
        for (int i = 0; i < len; i++)
        {
            int keep = Math.Clamp(bits - i * 8, 0, 8);
            b[i] &= (byte)(0xFF00 >> keep);
        }
        return new IPAddress(b);
    }

    public override string ToString() => $"{Address}/{Bits}";
    public bool Equals(IpPrefix other) => Bits == other.Bits && Equals(Address, other.Address);
    public override bool Equals(object? obj) => obj is IpPrefix p && Equals(p);
    public override int GetHashCode() => HashCode.Combine(Address, Bits);
    public static bool operator ==(IpPrefix a, IpPrefix b) => a.Equals(b);
    public static bool operator !=(IpPrefix a, IpPrefix b) => !a.Equals(b);
}
