using System.Net;
using System.Text;
using WgEngine.Crypto;
using WgEngine.Net;
using WgEngine.Uapi;

namespace WgEngine.Tests.Uapi;

public class UapiCodecTests
{
    [Fact]
    public void Get_writer_uses_wireguard_go_keys_and_order_and_the_parser_reads_it_back()
    {
        using var priv = WgPrivateKey.Generate();
        var peer = WgPrivateKey.Generate().PublicKey;
        var psk = WgPrivateKey.Generate().PublicKey;
        var hs = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000).AddTicks(1234567);
        var state = new UapiDeviceState
        {
            PrivateKey = priv, ListenPort = 51820, Fwmark = 7,
            Peers =
            [
                new UapiPeerState
                {
                    PublicKey = peer, PresharedKey = psk, Endpoint = new IPEndPoint(IPAddress.Parse("::ffff:127.0.0.1"), 4000),
                    LastHandshake = hs, TxBytes = 10, RxBytes = 20, PersistentKeepalive = 25,
                    AllowedIPs = [IpPrefix.Parse("10.0.0.2/32"), IpPrefix.Parse("fd00::2/128")],
                },
                new UapiPeerState { PublicKey = psk },
            ],
        };
        var sb = new StringBuilder();
        UapiGetWriter.Write(sb, state);
        var text = sb.ToString();
        Assert.Equal(
            $"private_key={priv.ExportHex()}\nlisten_port=51820\nfwmark=7\n" +
            $"public_key={peer.ToHex()}\npreshared_key={psk.ToHex()}\nprotocol_version=1\nendpoint=127.0.0.1:4000\n" +
            "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=123456700\ntx_bytes=10\nrx_bytes=20\n" +
            "persistent_keepalive_interval=25\nallowed_ip=10.0.0.2/32\nallowed_ip=fd00::2/128\n" +
            $"public_key={psk.ToHex()}\npreshared_key={new string('0', 64)}\nprotocol_version=1\n" +
            "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n",
            text);

        var back = UapiGetParser.Parse(text);
        Assert.Equal(priv.PublicKey, back.PrivateKey!.PublicKey);
        back.PrivateKey.Dispose();
        Assert.Equal(51820, back.ListenPort);
        Assert.Equal(7u, back.Fwmark);
        Assert.Equal(2, back.Peers.Count);
        Assert.Equal(psk, back.Peers[0].PresharedKey);
        Assert.Equal(hs, back.Peers[0].LastHandshake);
        Assert.Equal(2, back.Peers[0].AllowedIPs.Count);
        Assert.Null(back.Peers[1].PresharedKey);
        Assert.Null(back.Peers[1].LastHandshake);
    }

    [Fact]
    public void Get_writer_leaves_out_a_zero_port_and_fwmark_and_a_missing_key()
    {
        var sb = new StringBuilder();
        UapiGetWriter.Write(sb, new UapiDeviceState());
        Assert.Equal("", sb.ToString());
    }

    [Theory]
    [InlineData("errno=0\n\n", "", 0, true)]
    [InlineData("listen_port=1\nerrno=-22\n\n", "listen_port=1\n", -22, true)]
    [InlineData("listen_port=1\nerrno=0\n", "", 0, false)]
    [InlineData("xerrno=0\n\n", "", 0, false)]
    public void Client_splits_an_answer(string answer, string body, int errno, bool complete)
    {
        Assert.Equal(complete, UapiClient.TrySplit(answer, out var b, out var e));
        if (!complete) return;
        Assert.Equal(body, b);
        Assert.Equal(errno, e);
    }
}
