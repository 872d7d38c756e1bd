using System.Buffers.Binary;
using System.Security.Cryptography;

namespace WgEngine.Crypto;

/// <summary>
/// Encrypts one keypair's outgoing transport packets with the faster ChaCha20-Poly1305 for the size:
/// libsodium for small packets, the BCL (OpenSSL) above <see cref="BclThreshold"/>. Crossover from
/// bench/WgEngine.Bench AeadBenchmarks on this machine class: libsodium ~480 ns + 1.06 ns/B, BCL
/// ~960 ns + 0.35 ns/B (docs/performance.md). Opening stays with libsodium, whose failure is a return
/// value: the BCL throws on a bad tag, which would make forged packets 10x dearer to drop.
/// Thread-safe: several workers may send for the same peer.
/// </summary>
internal sealed class TransportSealer : IDisposable
{
    internal const int BclThreshold = 640;

    private readonly byte[] _key = new byte[ChaChaPoly.KeySize];
    private readonly object _lock = new();
    private ChaCha20Poly1305? _bcl;

    public TransportSealer(ReadOnlySpan<byte> key) => key.CopyTo(_key);

    /// <summary>The key, for tests and the libsodium path.</summary>
    public ReadOnlySpan<byte> Key => _key;

    /// <summary>Encrypts in place or into destination (plaintext.Length + 16 bytes: ciphertext then tag), empty AAD.</summary>
    public void Seal(ulong counter, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        if (plaintext.Length < BclThreshold)
        {
            ChaChaPoly.Seal(_key, counter, plaintext, ReadOnlySpan<byte>.Empty, destination);
            return;
        }
        Span<byte> nonce = stackalloc byte[ChaChaPoly.NonceSize];
        nonce[..4].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], counter);
        lock (_lock)
        {
            // Zeroed (the session was deleted while this packet was in flight): the all-zero key gives
            // a packet the peer drops, never the old key.
            _bcl ??= new ChaCha20Poly1305(_key);
            _bcl.Encrypt(nonce, plaintext, destination[..plaintext.Length], destination.Slice(plaintext.Length, ChaChaPoly.TagSize));
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            CryptographicOperations.ZeroMemory(_key);
            _bcl?.Dispose();
            _bcl = null;
        }
    }
}
