using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;

namespace WgEngine.Tests.Gateway;

/// <summary>Input the gateway used to accept and should not (issue 11 item 9): each case refused with a stable ErrorId.</summary>
public class VPNServerInputTests
{
    private static VPNServer Start(params string[] addresses) => VPNServer.Start(new ServerOptions
    {
        ListenPort = 0,
        Addresses = addresses.Length == 0 ? [IpPrefix.Parse("10.8.0.1/24")] : addresses.Select(IpPrefix.Parse).ToList(),
        BackendFactory = c => new FakeBackend(c),
    });

    [Theory]
    [InlineData("0.0.0.0/0")]
    [InlineData("::/0")]
    [InlineData("10.8.0.1/0")]
    [InlineData("0.0.0.0/24")]
    [InlineData("224.0.0.1/24")]
    [InlineData("ff02::1/64")]
    public void A_server_address_that_is_the_whole_space_unspecified_or_multicast_is_refused(string address)
    {
        var e = Assert.Throws<WgException>(() => Start("10.9.0.1/24", address));
        Assert.Equal("InvalidServerAddress", e.ErrorId);
        Assert.Equal(WgErrorKind.InvalidArgument, e.Kind);
    }

    [Theory]
    [InlineData("10.8.0.1/24")]
    [InlineData("fd00:8::1/64")]
    [InlineData("192.168.5.1/32")]
    public void Ordinary_server_addresses_still_start(string address)
    {
        using var s = Start(address);
        Assert.Equal(ServerState.Running, s.State);
    }

    public static TheoryData<string> LowOrderKeys()
    {
        var data = new TheoryData<string>
        {
            new string('0', 64),                                                   // all zero
            "01" + new string('0', 62),                                            // 1
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",    // order 8
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",    // order 8
            "ec" + new string('f', 60) + "7f",                                     // p-1
            "ed" + new string('f', 60) + "7f",                                     // p
            "ee" + new string('f', 60) + "7f",                                     // p+1
            "0000000000000000000000000000000000000000000000000000000000000080",    // 0 with bit 255 set
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(LowOrderKeys))]
    public void A_low_order_public_key_is_refused_and_libsodium_agrees_it_gives_no_shared_secret(string hex)
    {
        var key = WgKey.FromHex(hex);
        // The list is right: the DH with any private key fails (all-zero result) for each of these.
        using (var probe = WgPrivateKey.Generate())
        {
            var priv = Convert.FromHexString(probe.ExportHex());
            var shared = new byte[32];
            Assert.False(X25519.SharedSecret(priv, key.ToArray(), shared));
            Array.Clear(priv);
        }
        using var s = Start();
        var e = Assert.Throws<WgException>(() => s.AddPeer(new PeerSpec { PublicKey = key }));
        Assert.Equal("InvalidPeerPublicKey", e.ErrorId);
        Assert.Equal(0, s.PeerCount);
    }

    [Fact]
    public void Ordinary_keys_are_not_low_order()
    {
        Span<byte> b = stackalloc byte[32];
        for (int i = 0; i < 200; i++)
        {
            WgPrivateKey.Generate().PublicKey.CopyTo(b);
            Assert.False(X25519.IsLowOrder(b));
        }
    }

    [Fact]
    public void The_gateways_own_public_key_is_refused_as_a_peer()
    {
        using var s = Start();
        var e = Assert.Throws<WgException>(() => s.AddPeer(new PeerSpec { PublicKey = s.PublicKey }));
        Assert.Equal("PeerIsGateway", e.ErrorId);
    }

    [Fact]
    public void A_peer_name_longer_than_the_limit_is_refused_on_add_and_on_update()
    {
        using var s = Start();
        var ok = s.AddPeer(new PeerSpec { PublicKey = WgPrivateKey.Generate().PublicKey, Name = new string('n', VPNServer.MaxPeerNameLength) });
        Assert.Equal(VPNServer.MaxPeerNameLength, ok.Name!.Length);
        var e = Assert.Throws<WgException>(() => s.AddPeer(new PeerSpec { PublicKey = WgPrivateKey.Generate().PublicKey, Name = new string('n', 10_000) }));
        Assert.Equal("InvalidPeerName", e.ErrorId);
        e = Assert.Throws<WgException>(() => s.UpdatePeer(ok.PublicKey, new PeerUpdate { Name = new string('n', VPNServer.MaxPeerNameLength + 1) }));
        Assert.Equal("InvalidPeerName", e.ErrorId);
        Assert.Equal(1, s.PeerCount);
        Assert.Equal(VPNServer.MaxPeerNameLength, s.GetPeerInfo(ok.PublicKey)!.Name!.Length);
    }
}
