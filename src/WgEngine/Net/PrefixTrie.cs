using System.Numerics;
using System.Runtime.CompilerServices;

namespace WgEngine.Net;

/// <summary>
/// A path-compressed binary trie over fixed-width keys (uint for IPv4, UInt128 for IPv6), the
/// structure the kernel's allowedips.c and wireguard-go use. Keys are addresses in host order with
/// the first network bit as the most significant bit.
/// Readers (<see cref="Lookup"/>) take no lock. Writers must be serialised by the caller; they never
/// change a published node's key or prefix length, and publish every structural change with a single
/// Volatile.Write of one pointer, so a reader always walks either the old or the new shape. Unlinked
/// nodes keep their child pointers, so a reader standing on one still reaches the rest of the trie.
/// Invariant: a node without a value (a branch node) always has two children.
/// </summary>
internal sealed class PrefixTrie<TKey, T>
    where TKey : unmanaged, IBinaryInteger<TKey>, IUnsignedNumber<TKey>
    where T : class
{
    internal sealed class Node
    {
        public readonly TKey Key;   // already masked to Cidr bits
        public readonly byte Cidr;
        public Node? Zero;
        public Node? One;
        public T? Value;

        public Node(TKey key, int cidr, T? value)
        {
            Key = key;
            Cidr = (byte)cidr;
            Value = value;
        }
    }

    private Node? _root;

    internal static int MaxBits
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Unsafe.SizeOf<TKey>() * 8;
    }

    /// <summary>Longest-prefix match; lock-free and allocation-free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T? Lookup(TKey key)
    {
        T? found = null;
        Node? node = Volatile.Read(ref _root);
        while (node is not null)
        {
            int cidr = node.Cidr;
            // Leading zeros of the XOR = length of the common prefix; it must cover the node's prefix.
            if (CommonBits(key, node.Key) < cidr) break;
            T? value = Volatile.Read(ref node.Value);
            if (value is not null) found = value;
            if (cidr == MaxBits) break;
            node = BitAt(key, cidr) == 0 ? Volatile.Read(ref node.Zero) : Volatile.Read(ref node.One);
        }
        return found;
    }

    /// <summary>The node holding exactly key/cidr (value or not), or null. Writer side.</summary>
    public Node? FindExact(TKey key, int cidr)
    {
        key = Mask(key, cidr);
        Node? node = _root;
        while (node is not null && node.Cidr <= cidr && CommonBits(key, node.Key) >= node.Cidr)
        {
            if (node.Cidr == cidr) return node;
            node = BitAt(key, node.Cidr) == 0 ? node.Zero : node.One;
        }
        return null;
    }

    /// <summary>
    /// Sets the owner of key/cidr (host bits ignored). Returns the node now holding it and the previous
    /// owner (null when the prefix was not present). Writer side.
    /// </summary>
    public Node Insert(TKey key, int cidr, T value, out T? previous)
    {
        key = Mask(key, cidr);
        previous = null;
        Node? parent = null;
        Node? node = _root;
        while (node is not null)
        {
            int common = Math.Min(CommonBits(key, node.Key), Math.Min(cidr, node.Cidr));
            if (common == node.Cidr)
            {
                if (node.Cidr == cidr)
                {
                    // Exact prefix already present (as owner or as a branch node): replace its owner.
                    previous = node.Value;
                    Volatile.Write(ref node.Value, value);
                    return node;
                }
                parent = node;
                node = BitAt(key, node.Cidr) == 0 ? node.Zero : node.One;
                continue;
            }

            Node fresh;
            if (common == cidr)
            {
                // The new prefix contains the existing subtree: it becomes the subtree's parent.
                fresh = new Node(key, cidr, value);
                SetChild(fresh, BitAt(node.Key, cidr), node);
                Replace(parent, node, fresh);
                return fresh;
            }

            // The prefixes diverge below both lengths: a branch node at the split holds both.
            fresh = new Node(key, cidr, value);
            var branch = new Node(Mask(key, common), common, null);
            SetChild(branch, BitAt(key, common), fresh);
            SetChild(branch, BitAt(node.Key, common), node);
            Replace(parent, node, branch);
            return fresh;
        }

        var leaf = new Node(key, cidr, value);
        if (parent is null) Volatile.Write(ref _root, leaf);
        else SetChild(parent, BitAt(key, parent.Cidr), leaf);
        return leaf;
    }

    /// <summary>
    /// Clears a linked node's value and removes the node (and a branch parent left with one child)
    /// from the trie. Returns false when the node is not linked. Writer side.
    /// </summary>
    public bool Unlink(Node target)
    {
        Node? grand = null, parent = null, node = _root;
        while (node is not null && !ReferenceEquals(node, target))
        {
            if (node.Cidr >= target.Cidr) return false;
            grand = parent;
            parent = node;
            node = BitAt(target.Key, node.Cidr) == 0 ? node.Zero : node.One;
        }
        if (node is null) return false;

        Volatile.Write(ref target.Value, null);
        if (target.Zero is not null && target.One is not null) return true; // stays as a branch node

        Node? only = target.Zero ?? target.One;
        Replace(parent, target, only);
        if (only is null && parent is not null && parent.Value is null)
        {
            // The parent was a branch node and now has a single child: splice it out too.
            Node? remaining = parent.Zero ?? parent.One;
            Replace(grand, parent, remaining);
        }
        return true;
    }

    public void Clear() => Volatile.Write(ref _root, null);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TKey Mask(TKey key, int cidr) =>
        cidr == 0 ? TKey.Zero : key & (TKey.AllBitsSet << (MaxBits - cidr));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CommonBits(TKey a, TKey b) => int.CreateTruncating(TKey.LeadingZeroCount(a ^ b));

    /// <summary>The bit at position index counted from the most significant (first network) bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BitAt(TKey key, int index) =>
        int.CreateTruncating((key >> (MaxBits - 1 - index)) & TKey.One);

    private static void SetChild(Node parent, int bit, Node? child)
    {
        if (bit == 0) Volatile.Write(ref parent.Zero, child);
        else Volatile.Write(ref parent.One, child);
    }

    /// <summary>Publishes replacement in the slot (the root when parent is null) that holds old.</summary>
    private void Replace(Node? parent, Node old, Node? replacement)
    {
        if (parent is null) Volatile.Write(ref _root, replacement);
        else if (ReferenceEquals(parent.Zero, old)) Volatile.Write(ref parent.Zero, replacement);
        else Volatile.Write(ref parent.One, replacement);
    }
}
