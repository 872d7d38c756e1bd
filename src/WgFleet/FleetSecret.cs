using System.Security.Cryptography;
using System.Text;
using WgEngine.Crypto;
using WgEngine.Contracts;
using WgEngine.Gateway;

namespace WgFleet;

/// <summary>
/// The secret the instances and management sessions of one fleet share: preshared keys are stored encrypted
/// with a key derived from it (AES-256-GCM), and the fleet row holds a check value so that a wrong secret is
/// refused up front (FleetSecretMismatch) instead of failing on the first preshared key. Keys are derived
/// with HKDF-SHA256 (RFC 5869), salted with the fleet's name so two fleets with one secret do not share keys.
/// Never logged, never in an exception message.
/// </summary>
public sealed class FleetSecret : IDisposable
{
    public const int MinimumLength = 16;
    private const int NonceSize = 12, TagSize = 16;
    private readonly byte[] _encryptionKey;
    private readonly byte[] _check;

    private FleetSecret(byte[] encryptionKey, byte[] check)
    {
        _encryptionKey = encryptionKey;
        _check = check;
    }

    /// <summary>The secret's text (e.g. a file's first line); InvalidFleetSecret when shorter than <see cref="MinimumLength"/>.</summary>
    public static FleetSecret Derive(string fleet, string secret)
    {
        secret = secret.Trim();
        if (secret.Length < MinimumLength)
            throw new WgException(WgErrorKind.InvalidArgument, "InvalidFleetSecret",
                $"The fleet secret must have at least {MinimumLength} characters (e.g. the output of `openssl rand -base64 32`).");
        byte[] ikm = Encoding.UTF8.GetBytes(secret);
        byte[] salt = Encoding.UTF8.GetBytes("wg-fleet:" + fleet);
        try
        {
            var enc = HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, 32, salt, "preshared-keys"u8.ToArray());
            var check = HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, 32, salt, "check-value"u8.ToArray());
            return new FleetSecret(enc, check);
        }
        finally { CryptographicOperations.ZeroMemory(ikm); }
    }

    /// <summary>The value stored with the fleet: a derived key, which says nothing of the encryption key.</summary>
    public byte[] CheckValue => (byte[])_check.Clone();

    /// <summary>Constant-time comparison with the fleet's stored check value.</summary>
    public bool Matches(ReadOnlySpan<byte> stored) => CryptographicOperations.FixedTimeEquals(_check, stored);

    /// <summary>nonce | ciphertext | tag; the peer's public key is the associated data, so a ciphertext cannot be moved to another peer.</summary>
    public byte[] Encrypt(WgKey presharedKey, WgKey peer)
    {
        var plain = presharedKey.ToArray();
        var output = new byte[NonceSize + plain.Length + TagSize];
        RandomNumberGenerator.Fill(output.AsSpan(0, NonceSize));
        using var gcm = new AesGcm(_encryptionKey, TagSize);
        gcm.Encrypt(output.AsSpan(0, NonceSize), plain, output.AsSpan(NonceSize, plain.Length), output.AsSpan(NonceSize + plain.Length), peer.ToArray());
        CryptographicOperations.ZeroMemory(plain);
        return output;
    }

    /// <summary>FleetSecretMismatch when the ciphertext was not made with this secret (or was altered).</summary>
    public WgKey Decrypt(ReadOnlySpan<byte> sealedKey, WgKey peer)
    {
        if (sealedKey.Length != NonceSize + WgKey.Size + TagSize) throw Mismatch();
        Span<byte> plain = stackalloc byte[WgKey.Size];
        try
        {
            using var gcm = new AesGcm(_encryptionKey, TagSize);
            gcm.Decrypt(sealedKey[..NonceSize], sealedKey.Slice(NonceSize, WgKey.Size), sealedKey[(NonceSize + WgKey.Size)..], plain, peer.ToArray());
            return new WgKey(plain);
        }
        catch (AuthenticationTagMismatchException) { throw Mismatch(); }
        finally { CryptographicOperations.ZeroMemory(plain); }
    }

    internal static WgException Mismatch() => new(WgErrorKind.InvalidArgument, "FleetSecretMismatch",
        "The fleet secret given is not the one this fleet was created with (its check value or a preshared key does not match).");

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_encryptionKey);
        CryptographicOperations.ZeroMemory(_check);
    }
}
