namespace WgEngine.Session;

/// <summary>
/// The receiver-index table (whitepaper §5.4.2) as one peer's session core sees it. The device's table maps
/// each index to the peer that owns it; the core only asks for a fresh index for a handshake, points it at
/// the session the handshake derived, and gives indices back when a handshake or session ends.
/// </summary>
internal interface ISessionIndices
{
    /// <summary>A new random index, unused by any other handshake or session, naming the peer's handshake.</summary>
    uint Reserve();

    /// <summary>The index of a finished handshake now names the session it derived.</summary>
    void Bind(uint index, Keypair session);

    /// <summary>The index names nothing any more.</summary>
    void Release(uint index);
}
