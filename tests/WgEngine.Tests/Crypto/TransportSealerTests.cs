using WgEngine.Crypto;

namespace WgEngine.Tests.Crypto;

/// <summary>Both backends of the sealer produce WireGuard-compatible output: libsodium opens them.</summary>
public class TransportSealerTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(TransportSealer.BclThreshold - 16)]
    [InlineData(TransportSealer.BclThreshold)]
    [InlineData(1424)]
    public void SealedOnEitherSideOfTheThresholdOpensWithTheReferencePath(int length)
    {
        var key = new byte[32];
        Random.Shared.NextBytes(key);
        var plain = new byte[length];
        Random.Shared.NextBytes(plain);
        using var sealer = new TransportSealer(key);
        for (ulong counter = 0; counter < 3; counter++)
        {
            var buf = new byte[length + 16];
            plain.CopyTo(buf, 0);
            sealer.Seal(counter, buf.AsSpan(0, length), buf); // in place, as the device does
            var expected = new byte[length + 16];
            ChaChaPoly.Seal(key, counter, plain, default, expected);
            Assert.Equal(expected, buf);
            var back = new byte[length];
            Assert.True(ChaChaPoly.Open(key, counter, buf, default, back));
            Assert.Equal(plain, back);
        }
    }
}
