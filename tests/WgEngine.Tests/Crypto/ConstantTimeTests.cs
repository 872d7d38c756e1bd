using WgEngine.Crypto;

namespace WgEngine.Tests.Crypto;

public class ConstantTimeTests
{
    [Fact]
    public void ComparesContentsAndLength()
    {
        byte[] a = [1, 2, 3, 4], b = [1, 2, 3, 4], c = [1, 2, 3, 5];
        Assert.True(ConstantTime.Equals(a, b));
        Assert.False(ConstantTime.Equals(a, c));
        Assert.False(ConstantTime.Equals(a, a.AsSpan(0, 3)));
        Assert.True(ConstantTime.Equals([], []));
    }
}
