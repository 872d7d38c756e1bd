using System.Collections.Concurrent;
using WgEngine.Crypto;
using WgEngine.Session;

namespace WgEngine.Device;

/// <summary>What a local (receiver) index points to: a handshake in progress of a peer, or one of its keypairs.</summary>
internal sealed class IndexEntry
{
    public IndexEntry(Peer peer, Keypair? keypair) { Peer = peer; Keypair = keypair; }
    public Peer Peer { get; }
    public Keypair? Keypair { get; }
}

/// <summary>
/// The receiver-index table (whitepaper §5.4.2: sender indices are random 32-bit values chosen by the
/// receiver of later messages). Lock-free lookups on the data path.
/// </summary>
internal sealed class IndexTable
{
    private readonly ConcurrentDictionary<uint, IndexEntry> _entries = new();

    public int Count => _entries.Count;

    /// <summary>Registers a new random unused index for the entry.</summary>
    public uint Add(IndexEntry entry)
    {
        Span<byte> r = stackalloc byte[4];
        while (true)
        {
            Sodium.RandomBytes(r);
            uint index = BitConverter.ToUInt32(r);
            if (_entries.TryAdd(index, entry)) return index;
        }
    }

    /// <summary>Points an existing index at a new entry (handshake -> keypair under the same index).</summary>
    public void Replace(uint index, IndexEntry entry) => _entries[index] = entry;

    public bool TryGet(uint index, out IndexEntry entry) => _entries.TryGetValue(index, out entry!);

    public void Remove(uint index) => _entries.TryRemove(index, out _);
}
