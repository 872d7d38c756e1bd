using WgEngine.Crypto;

namespace WgEngine.Tests.Crypto;

/// <summary>
/// The transport AEAD on both sides of its thresholds gives exactly libsodium's RFC 8439 bytes (so WireGuard peers
/// open them), opens what libsodium sealed, and refuses a forgery with false. OpenSSL's EVP path must be in use on
/// this machine (libcrypto.so.3 is what the .NET runtime itself loads); otherwise the test says so and fails.
/// </summary>
public class TransportAeadTests
{
    [Fact]
    public void OpenSslEvpIsAvailableHere() =>
        Assert.True(OpenSslAead.IsAvailable, "libcrypto.so.3 with ChaCha20-Poly1305 should be loadable (the BCL's OpenSSL)");

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(TransportAead.EvpOpenThreshold - 1)]
    [InlineData(TransportAead.EvpOpenThreshold)]
    [InlineData(TransportAead.EvpSealThreshold - 16)]
    [InlineData(TransportAead.EvpSealThreshold)]
    [InlineData(1424)]
    [InlineData(4000)]
    public void SealsLibsodiumsBytesInPlaceAndOpensThem(int length)
    {
        var key = RandomBytes(32);
        var plain = RandomBytes(length);
        for (ulong counter = 0; counter < 3; counter++)
        {
            var buf = new byte[length + 16];
            plain.CopyTo(buf, 0);
            TransportAead.Seal(key, counter, buf.AsSpan(0, length), buf);   // in place, as the device does
            var expected = new byte[length + 16];
            ChaChaPoly.Seal(key, counter, plain, default, expected);
            Assert.Equal(expected, buf);

            Assert.True(TransportAead.Open(key, counter, buf, buf.AsSpan(0, length)));   // in place
            Assert.Equal(plain, buf.AsSpan(0, length).ToArray());
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(64)]
    [InlineData(TransportAead.EvpOpenThreshold)]
    [InlineData(1420)]
    public void RefusesAForgedTagWrongCounterOrWrongKeyWithFalse(int length)
    {
        var key = RandomBytes(32);
        var sealedMessage = new byte[length + 16];
        ChaChaPoly.Seal(key, 7, RandomBytes(length), default, sealedMessage);
        var output = new byte[Math.Max(length, 1)];

        var forged = (byte[])sealedMessage.Clone();
        forged[^1] ^= 1;
        Assert.False(TransportAead.Open(key, 7, forged, output));
        Assert.False(TransportAead.Open(key, 8, sealedMessage, output));
        Assert.False(TransportAead.Open(RandomBytes(32), 7, sealedMessage, output));
        Assert.False(TransportAead.Open(key, 7, sealedMessage.AsSpan(0, 15), output));   // shorter than a tag
        Assert.True(TransportAead.Open(key, 7, sealedMessage, output));                    // the genuine one still opens
    }

    [Fact]
    public void ThreadsSealingAtOnceEachGetTheRightBytes()
    {
        // One EVP context per thread: two threads under different keys must never mix their state.
        var keys = new[] { RandomBytes(32), RandomBytes(32) };
        var plain = RandomBytes(1420);
        var expected = keys.Select(k => { var e = new byte[1436]; ChaChaPoly.Seal(k, 1, plain, default, e); return e; }).ToArray();
        int mismatches = 0;
        Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, t =>
        {
            var buf = new byte[1436];
            for (int i = 0; i < 2000; i++)
            {
                TransportAead.Seal(keys[t], 1, plain, buf);
                if (!buf.AsSpan().SequenceEqual(expected[t])) Interlocked.Increment(ref mismatches);
            }
        });
        Assert.Equal(0, mismatches);
    }

    [Fact]
    public void SealingAndOpeningAllocateNothingOnceWarm()
    {
        var key = RandomBytes(32);
        var buf = new byte[1436];
        TransportAead.Seal(key, 1, buf.AsSpan(0, 1420), buf);
        Assert.True(TransportAead.Open(key, 1, buf, buf.AsSpan(0, 1420)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong i = 2; i < 1000; i++)
        {
            TransportAead.Seal(key, i, buf.AsSpan(0, 1420), buf);
            TransportAead.Open(key, i, buf, buf.AsSpan(0, 1420));
        }
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    private static byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        Random.Shared.NextBytes(b);
        return b;
    }
}
