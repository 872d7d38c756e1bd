using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using WgEngine.Crypto;
using WgEngine.Egress;
using WgEngine.Egress.Tcp;

namespace WgEngine.Tests.Egress.Tcp;

/// <summary>
/// A small TCP client standing in for a WireGuard peer: it speaks to a <see cref="TcpEgress"/> through
/// OnPacket and receives its segments as the egress's sink. Go-back-N with a fixed 300 ms timeout,
/// in-order receive only (no SACK), a 1 MiB window: simple, but a real sender and receiver.
/// </summary>
internal sealed class ScriptedPeer : IPacketSink
{
    private const int Mss = 1200;
    private readonly BlockingCollection<byte[]> _in = new();
    private readonly WgKey _key = new(Enumerable.Repeat((byte)9, 32).ToArray());
    private readonly byte[] _src, _dst;
    private readonly ushort _srcPort, _dstPort;
    private readonly uint _iss = 0x7FFF_F000;
    private uint _sndUna, _sndNxt, _sndMax, _rcvNxt, _peerWnd; // _sndMax: highest sequence ever sent (go-back-N rewinds _sndNxt only)
    private int _scale;
    private bool _finSent;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public TcpEgress Egress = null!;
    /// <summary>Loss both ways: every Nth data segment from us, and every Nth from the egress, is dropped (0 = none).</summary>
    public int DropEvery;
    private int _sentData, _gotData;
    public long Received { get; private set; }
    public bool FinReceived { get; private set; }
    public bool FinAcked => _finSent && _sndUna == _sndNxt;
    public uint AckedBytes => _sndUna - _iss - 1;
    public uint PeerWindow => _peerWnd;
    /// <summary>Longest time the egress's window stayed at zero with no ACK progress.</summary>
    public TimeSpan LongestStall { get; private set; }
    public uint AckedAtStall { get; private set; }

    public ScriptedPeer(IPAddress src, IPAddress dst, ushort dstPort)
    {
        _src = src.GetAddressBytes();
        _dst = dst.GetAddressBytes();
        _srcPort = (ushort)Random.Shared.Next(20000, 60000);
        _dstPort = dstPort;
    }

    public bool SendPacket(ReadOnlySpan<byte> ipPacket) { _in.Add(ipPacket.ToArray()); return true; }

    public byte[] ReceivedHash() => _hash.GetHashAndReset();

    private void Send(uint seq, TcpFlags flags, ReadOnlySpan<byte> payload = default, bool syn = false)
    {
        var buf = new byte[TcpPacketWriter.MaxHeaders + payload.Length];
        var opts = syn ? new TcpOptionsOut { Mss = 1380, WindowScale = 7, SackPermitted = true } : TcpOptionsOut.None;
        ushort window = syn ? (ushort)65535 : (ushort)((1 << 20) >> 7);
        int hl = TcpPacketWriter.WriteHeaders(buf, _src, _dst, _srcPort, _dstPort, seq, _rcvNxt, flags, window, opts, payload.Length);
        payload.CopyTo(buf.AsSpan(hl));
        TcpPacketWriter.Finish(buf, hl + payload.Length);
        if (DropEvery > 0 && payload.Length > 0 && ++_sentData % DropEvery == 0) return; // lost on the way
        Egress.OnPacket(_key, buf.AsSpan(0, hl + payload.Length));
    }

    public void Connect(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            Send(_iss, TcpFlags.Syn, default, syn: true);
            if (!_in.TryTake(out var p, 1000)) continue;
            var s = Seg.From(p);
            if (s.Has(TcpFlags.Rst)) throw new InvalidOperationException("connection refused by the egress");
            Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, s.Flags);
            Assert.Equal(_iss + 1, s.Ack);
            _scale = Math.Max(s.WindowScale, 0);
            _rcvNxt = s.Seq + 1;
            _sndUna = _sndNxt = _sndMax = _iss + 1;
            _peerWnd = s.Window;
            Send(_sndNxt, TcpFlags.Ack);
            return;
        }
        throw new TimeoutException("no SYN-ACK");
    }

    /// <summary>Sends <paramref name="upload"/> then FIN (unless <paramref name="fin"/> is false) while receiving, until <paramref name="done"/> or the timeout.</summary>
    public void Run(byte[] upload, Func<ScriptedPeer, bool> done, TimeSpan timeout, bool fin = true)
    {
        var sw = Stopwatch.StartNew();
        var lastProgress = sw.Elapsed;
        var zeroSince = TimeSpan.MinValue;
        var lastProbe = TimeSpan.Zero;
        uint finalSeq = _iss + 1 + (uint)upload.Length + 1; // ACK of our FIN
        while (!done(this))
        {
            if (sw.Elapsed > timeout) throw new TimeoutException($"peer stuck: acked {AckedBytes}, received {Received}, window {_peerWnd} (next {_sndNxt - _iss - 1}, highest sent {_sndMax - _iss - 1}, fin sent {_finSent}, fin received {FinReceived})");
            bool needAck = false;
            int drained = 0;
            while (drained++ < 256 && _in.TryTake(out var p, drained == 1 ? 1 : 0))
            {
                var s = Seg.From(p);
                if (DropEvery > 0 && s.Payload.Length > 0 && ++_gotData % DropEvery == 0) continue; // lost on the way
                if (s.Has(TcpFlags.Rst)) throw new InvalidOperationException("reset by the egress");
                if (s.Has(TcpFlags.Ack))
                {
                    // Anything up to the highest byte ever sent is a valid ACK, also after a go-back rewound
                    // _sndNxt (a thread descheduled past the 300 ms timeout does that while ACKs are queued):
                    // comparing with _sndNxt would discard them, and a peer already in TIME_WAIT never repeats them.
                    if ((int)(s.Ack - _sndUna) > 0 && (int)(s.Ack - _sndMax) <= 0)
                    {
                        _sndUna = s.Ack;
                        lastProgress = sw.Elapsed;
                        if ((int)(_sndNxt - _sndUna) < 0) _sndNxt = _sndUna;
                        if (_sndUna == finalSeq) _finSent = true; // our FIN went out before the go-back and is covered
                    }
                    _peerWnd = (uint)s.Window << _scale;
                }
                if (s.Payload.Length > 0)
                {
                    if (s.Seq == _rcvNxt) { _hash.AppendData(s.Payload); _rcvNxt += (uint)s.Payload.Length; Received += s.Payload.Length; }
                    needAck = true;
                }
                if (s.Has(TcpFlags.Fin) && s.Seq + (uint)s.Payload.Length == _rcvNxt) { _rcvNxt++; FinReceived = true; needAck = true; }
            }
            if (needAck) Send(_sndNxt, TcpFlags.Ack);

            // flow control seen from the peer: how long did the egress keep its window shut?
            if (_peerWnd == 0 && _sndUna != _iss + 1 + (uint)upload.Length)
            {
                if (zeroSince == TimeSpan.MinValue) zeroSince = sw.Elapsed;
                var stall = sw.Elapsed - (zeroSince > lastProgress ? zeroSince : lastProgress);
                if (stall > LongestStall) { LongestStall = stall; AckedAtStall = AckedBytes; }
                if (sw.Elapsed - lastProbe > TimeSpan.FromMilliseconds(200)) { Send(_sndUna - 1, TcpFlags.Ack); lastProbe = sw.Elapsed; }
            }
            else zeroSince = TimeSpan.MinValue;

            int flightLimit = (int)Math.Min(_peerWnd, 512 * 1024);
            while (true)
            {
                int off = (int)(_sndNxt - _iss - 1);
                int n = Math.Min(Math.Min(Mss, upload.Length - off), flightLimit - (int)(_sndNxt - _sndUna));
                if (n <= 0) break;
                Send(_sndNxt, TcpFlags.Ack | TcpFlags.Psh, upload.AsSpan(off, n));
                _sndNxt += (uint)n;
                if ((int)(_sndNxt - _sndMax) > 0) _sndMax = _sndNxt;
            }
            if (fin && !_finSent && _sndNxt - _iss - 1 == upload.Length)
            {
                Send(_sndNxt, TcpFlags.Fin | TcpFlags.Ack);
                _sndNxt++;
                if ((int)(_sndNxt - _sndMax) > 0) _sndMax = _sndNxt;
                _finSent = true;
            }
            if (_sndUna != _sndNxt && sw.Elapsed - lastProgress > TimeSpan.FromMilliseconds(300) && _peerWnd > 0)
            {
                // go back N: resend from the first unacknowledged byte
                _sndNxt = _sndUna;
                _finSent = false; // a FIN still unacknowledged goes again after the data
                lastProgress = sw.Elapsed;
            }
        }
    }
}
