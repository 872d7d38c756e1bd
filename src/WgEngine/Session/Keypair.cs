using System.Buffers.Binary;
using System.Security.Cryptography;
using WgEngine.Crypto;
using WgEngine.Noise;

namespace WgEngine.Session;

/// <summary>
/// One session's transport keys (whitepaper §5.4.6) with its indices, its send counter and its replay
/// window. Send counters are taken atomically so that several workers can encrypt for the same peer; the
/// receive replay window is guarded by a lock because decryption of one keypair may also happen on several
/// threads. Which peer it belongs to is the index table's business (a session knows only its own keys).
/// </summary>
internal sealed class Keypair
{
    private readonly byte[] _sendKey = new byte[32];
    private readonly byte[] _receiveKey = new byte[32];
    private readonly object _replayLock = new();
    private ReplayWindow _replay;
    private long _sendCounter = -1;

    public Keypair(bool isInitiator, uint localIndex, uint remoteIndex, long createdAt)
    {
        IsInitiator = isInitiator;
        LocalIndex = localIndex;
        RemoteIndex = remoteIndex;
        CreatedAt = createdAt;
    }

    public bool IsInitiator { get; }
    public uint LocalIndex { get; }
    public uint RemoteIndex { get; }
    /// <summary>TimeProvider timestamp of the handshake that made it.</summary>
    public long CreatedAt { get; }

    internal Span<byte> SendKeySpan => _sendKey;
    internal Span<byte> ReceiveKeySpan => _receiveKey;
    public ReadOnlySpan<byte> SendKey => _sendKey;
    public ReadOnlySpan<byte> ReceiveKey => _receiveKey;

    /// <summary>Encrypts a transport payload (destination: plaintext.Length + 16 bytes). A session erased while a
    /// packet is in flight seals it under the all-zero key: the peer drops it, the old key never leaks.</summary>
    public void Seal(ulong counter, ReadOnlySpan<byte> plaintext, Span<byte> destination) =>
        TransportAead.Seal(_sendKey, counter, plaintext, destination);

    /// <summary>Decrypts a transport payload in place or into destination; false when the tag does not verify.</summary>
    public bool Open(ulong counter, ReadOnlySpan<byte> ciphertextAndTag, Span<byte> destination) =>
        TransportAead.Open(_receiveKey, counter, ciphertextAndTag, destination);

    /// <summary>
    /// Frames and seals one transport message in place (whitepaper §5.4.6): <paramref name="message"/> holds
    /// the plaintext at offset 16 (<paramref name="length"/> bytes, 0 for a keepalive); the header is written in
    /// front, the plaintext zero-padded to <paramref name="padded"/> bytes and the tag appended. Returns the
    /// message's length.
    /// </summary>
    public int SealTransport(ulong counter, Span<byte> message, int length, int padded)
    {
        int total = FrameTransport(counter, message, length, padded);
        SealFramed(counter, message, padded);
        return total;
    }

    /// <summary>The first half of <see cref="SealTransport"/>: header and padding written, the payload still in
    /// clear. Returns the length the message will have once <see cref="SealFramed"/> sealed it (a batch frames as
    /// it collects and seals when it flushes, on several cores).</summary>
    public int FrameTransport(ulong counter, Span<byte> message, int length, int padded)
    {
        message.Slice(MessageLayout.TransportHeaderSize + length, padded - length).Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(message, MessageLayout.TypeTransport);
        BinaryPrimitives.WriteUInt32LittleEndian(message[MessageLayout.TransportReceiverOffset..], RemoteIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(message[MessageLayout.TransportCounterOffset..], counter);
        return MessageLayout.TransportHeaderSize + padded + ChaChaPoly.TagSize;
    }

    /// <summary>The second half of <see cref="SealTransport"/>: encrypts the framed message's padded payload in
    /// place and appends the tag.</summary>
    public void SealFramed(ulong counter, Span<byte> message, int padded)
    {
        var plain = message.Slice(MessageLayout.TransportHeaderSize, padded);
        Seal(counter, plain, message.Slice(MessageLayout.TransportHeaderSize, padded + ChaChaPoly.TagSize));
    }

    /// <summary>Next send counter, or false when the keypair has sent its last allowed message.</summary>
    public bool TryNextSendCounter(out ulong counter)
    {
        counter = (ulong)Interlocked.Increment(ref _sendCounter);
        return counter < ProtocolConstants.RejectAfterMessages;
    }

    /// <summary>Test hook: the next counter to send with (to reach the message limits without 2^60 packets).</summary>
    internal void SetNextSendCounter(ulong next) => Volatile.Write(ref _sendCounter, unchecked((long)(next - 1)));

    public ulong SendCounter => (ulong)Volatile.Read(ref _sendCounter) + 1;

    /// <summary>Replay check; call only after the packet authenticated.</summary>
    public bool AcceptCounter(ulong counter)
    {
        lock (_replayLock) return _replay.TryAccept(counter);
    }

    public void Zero()
    {
        CryptographicOperations.ZeroMemory(_sendKey);
        CryptographicOperations.ZeroMemory(_receiveKey);
    }
}
