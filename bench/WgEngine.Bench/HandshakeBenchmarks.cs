using BenchmarkDotNet.Attributes;
using WgEngine.Crypto;
using WgEngine.Noise;

namespace WgEngine.Bench;

/// <summary>
/// Cost of the Noise_IKpsk2 handshake on each side. The responder's share (consume an initiation,
/// build the response, derive keys) bounds handshakes per second per core.
/// </summary>
[MemoryDiagnoser]
public class HandshakeBenchmarks
{
    private readonly byte[] _iPriv = new byte[32], _iPub = new byte[32], _rPriv = new byte[32], _rPub = new byte[32];
    private readonly byte[] _iEph = new byte[32], _rEph = new byte[32], _psk = new byte[32];
    private readonly byte[] _initiation = new byte[NoiseHandshake.InitiationBodySize(12)];
    private readonly byte[] _response = new byte[NoiseHandshake.ResponseBodySize(0)];
    private readonly byte[] _re = new byte[32], _rs = new byte[32], _ts = new byte[12], _k1 = new byte[32], _k2 = new byte[32];
    private readonly NoiseHandshake _initiator = new(), _responder = new();

    [GlobalSetup]
    public void Setup()
    {
        X25519.GeneratePrivateKey(_iPriv); X25519.PublicKey(_iPriv, _iPub);
        X25519.GeneratePrivateKey(_rPriv); X25519.PublicKey(_rPriv, _rPub);
        X25519.GeneratePrivateKey(_iEph);
        _initiator.InitializeWireGuard(_rPub);
        _initiator.WriteInitiation(_iEph, _iPriv, _iPub, _rPub, _ts, _initiation);
    }

    [Benchmark(Description = "initiator: create initiation")]
    public bool CreateInitiation()
    {
        _initiator.InitializeWireGuard(_rPub);
        X25519.GeneratePrivateKey(_iEph);
        return _initiator.WriteInitiation(_iEph, _iPriv, _iPub, _rPub, _ts, _initiation);
    }

    private sealed class CachedStaticStatic(byte[] secret) : IStaticStaticSource
    {
        public bool TryGetStaticStatic(ReadOnlySpan<byte> remoteStatic, Span<byte> sharedSecret)
        {
            secret.CopyTo(sharedSecret);
            return true;
        }
    }

    private CachedStaticStatic? _cached;

    [Benchmark(Description = "responder, static-static DH cached (the device's steady state)")]
    public bool RespondToInitiationCached()
    {
        if (_cached is null)
        {
            var ss = new byte[32];
            X25519.SharedSecret(_rPriv, _iPub, ss);
            _cached = new CachedStaticStatic(ss);
        }
        _responder.InitializeWireGuard(_rPub);
        if (!_responder.ReadInitiation(_initiation, _rPriv, _re, _rs, _ts, _cached)) return false;
        X25519.GeneratePrivateKey(_rEph);
        if (!_responder.WriteResponse(_rEph, _re, _rs, _psk, ReadOnlySpan<byte>.Empty, _response)) return false;
        _responder.Split(false, _k1, _k2);
        return true;
    }

    [Benchmark(Description = "responder: consume initiation + create response + keys")]
    public bool RespondToInitiation()
    {
        _responder.InitializeWireGuard(_rPub);
        if (!_responder.ReadInitiation(_initiation, _rPriv, _re, _rs, _ts)) return false;
        X25519.GeneratePrivateKey(_rEph);
        if (!_responder.WriteResponse(_rEph, _re, _rs, _psk, ReadOnlySpan<byte>.Empty, _response)) return false;
        _responder.Split(false, _k1, _k2);
        return true;
    }
}
