using System.Net;
using System.Runtime.InteropServices;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgEngine.Tun;

namespace WgEngine.Tests.Tun;

/// <summary>The kernel ABI the TUN code relies on, derived independently here, and the error mapping.</summary>
public class TunAbiTests
{
    // asm-generic/ioctl.h: _IOW(type, nr, size) = (1 << 30) | (size << 16) | (type << 8) | nr.
    private static uint IOW(char type, uint nr, uint size) => (1u << 30) | (size << 16) | ((uint)type << 8) | nr;

    [Fact]
    public void Tun_ioctl_numbers_follow_the_IOW_encoding()
    {
        // xUnit2000 wants a constant as the expected value; here the constants are what is under test and the
        // kernel header's encoding is the expectation, so the order stays (a failure then reads correctly).
#pragma warning disable xUnit2000
        Assert.Equal(IOW('T', 202, sizeof(int)), TunNative.TUNSETIFF);
        Assert.Equal(IOW('T', 208, sizeof(uint)), TunNative.TUNSETOFFLOAD);
#pragma warning restore xUnit2000
    }

    [Fact]
    public void Ifreq_is_name_plus_the_ifmap_union()
    {
        // struct ifmap: two unsigned longs, an unsigned short and three bytes, padded to the long's alignment.
        int ifmap = 2 * IntPtr.Size + 2 + 3;
        ifmap = (ifmap + IntPtr.Size - 1) / IntPtr.Size * IntPtr.Size;
        Assert.Equal(16 + ifmap, TunNative.IfReqSize);
        if (IntPtr.Size == 8) Assert.Equal(40, TunNative.IfReqSize);
        Assert.Equal(16 + 4 + 4, TunNative.In6IfReqSize);
    }

    [Fact]
    public void Sockaddr_in_goes_at_the_union_with_host_order_family_and_network_order_address()
    {
        var req = new byte[TunNative.IfReqSize];
        TunNative.WriteName(req, "wg-test");
        TunNative.WriteSockaddrIn(req, IPAddress.Parse("10.1.2.3"));
        Assert.Equal("wg-test", TunNative.ReadName(req));
        Assert.Equal((ushort)2, MemoryMarshal.Read<ushort>(req.AsSpan(16)));
        Assert.Equal(new byte[] { 0, 0, 10, 1, 2, 3 }, req.AsSpan(18, 6).ToArray());   // port 0, then the address
        Assert.All(req.AsSpan(24, 8).ToArray(), b => Assert.Equal(0, b));
    }

    [Fact]
    public void In6_ifreq_holds_address_prefix_length_and_index()
    {
        var req = new byte[TunNative.In6IfReqSize];
        req.AsSpan().Fill(0xEE);
        TunNative.WriteIn6IfReq(req, IPAddress.Parse("fd00:8::1"), 64, 7);
        Assert.Equal(IPAddress.Parse("fd00:8::1").GetAddressBytes(), req.AsSpan(0, 16).ToArray());
        Assert.Equal(64u, MemoryMarshal.Read<uint>(req.AsSpan(16)));
        Assert.Equal(7, MemoryMarshal.Read<int>(req.AsSpan(20)));
    }

    [Fact]
    public void Name_is_cleared_and_nul_terminated()
    {
        var req = new byte[TunNative.IfReqSize];
        req.AsSpan().Fill((byte)'x');
        TunNative.WriteName(req, "ab");
        Assert.Equal("ab", TunNative.ReadName(req));
        Assert.All(req.AsSpan(2, 14).ToArray(), b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData("wg0")]
    [InlineData("a")]
    [InlineData("gw-office_01.x")]
    [InlineData("abcdefghijklmno")]   // 15: the maximum
    public void Valid_names_pass(string name) => TunErrors.ValidateName(name);

    [Theory]
    [InlineData("")]
    [InlineData("abcdefghijklmnop")]  // 16
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("wg0:1")]
    [InlineData("tun%d")]
    [InlineData("a b")]
    [InlineData("a\tb")]
    public void Invalid_names_are_refused_with_InvalidTunName(string name)
    {
        var e = Assert.Throws<WgException>(() => TunErrors.ValidateName(name));
        Assert.Equal("InvalidTunName", e.ErrorId);
        Assert.Equal(WgErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public void Name_length_counts_utf8_bytes_as_the_kernel_does()
    {
        TunErrors.ValidateName("abcdefghijklm\u00e9");   // 13 ASCII + a 2-byte character = 15 bytes
        var e = Assert.Throws<WgException>(() => TunErrors.ValidateName("abcdefghijklmn\u00e9"));   // 14 chars, 16 bytes
        Assert.Equal("InvalidTunName", e.ErrorId);
    }

    [Fact]
    public void Too_long_name_says_the_limit()
    {
        var e = Assert.Throws<WgException>(() => TunErrors.ValidateName("a-very-long-server-name"));
        Assert.Contains("15", e.Message);
        Assert.Contains("-Name", e.Message);
    }

    [Fact]
    public void EPERM_on_TUNSETIFF_is_TunPermissionDenied_naming_the_capability_and_the_alternative()
    {
        var e = TunErrors.CreateFailed("wg0", TunNative.EPERM);
        Assert.Equal("TunPermissionDenied", e.ErrorId);
        Assert.Equal(WgErrorKind.InvalidOperation, e.Kind);
        Assert.Contains("CAP_NET_ADMIN", e.Message);
        Assert.Contains("-Egress Userspace", e.Message);
        Assert.Contains("'wg0'", e.Message);
    }

    [Theory]
    [InlineData(TunNative.ENOENT)]
    [InlineData(TunNative.ENODEV)]
    [InlineData(TunNative.ENXIO)]
    public void Missing_device_is_TunNotAvailable_with_the_container_hint(int errno)
    {
        var e = TunErrors.OpenFailed(errno);
        Assert.Equal("TunNotAvailable", e.ErrorId);
        Assert.Contains("--device /dev/net/tun", e.Message);
        Assert.Contains("-Egress Userspace", e.Message);
    }

    [Theory]
    [InlineData(TunNative.EPERM)]
    [InlineData(TunNative.EACCES)]
    public void Device_access_denied_is_TunPermissionDenied(int errno)
    {
        var e = TunErrors.OpenFailed(errno);
        Assert.Equal("TunPermissionDenied", e.ErrorId);
        Assert.Contains("/dev/net/tun", e.Message);
    }

    [Fact]
    public void Busy_name_is_TunNameInUse()
    {
        var e = TunErrors.CreateFailed("wg0", TunNative.EBUSY);
        Assert.Equal("TunNameInUse", e.ErrorId);
        Assert.Equal(WgErrorKind.AlreadyExists, e.Kind);
    }

    [Fact]
    public void Errno_text_comes_from_the_system()
    {
        Assert.Contains("errno 1", TunErrors.Describe(TunNative.EPERM));
        Assert.Contains("ermi", TunErrors.Describe(TunNative.EPERM));   // "Operation not permitted"
    }
}
