using System.Text;
using System.Text.RegularExpressions;
using WgEngine.Crypto;
using WgEngine.Uapi;

namespace WgEngine.Tests.Uapi;

/// <summary>Random, mostly malformed request streams: the connection answers with errnos or hangs up, never throws.</summary>
public class UapiConnectionFuzzTests
{
    /// <summary>A stream that reads from fixed input and collects what is written.</summary>
    private sealed class ScriptedStream(byte[] input) : Stream
    {
        private readonly MemoryStream _in = new(input);
        public readonly MemoryStream Out = new();
        public override int Read(byte[] buffer, int offset, int count) => _in.Read(buffer, offset, count);
        public override void Write(byte[] buffer, int offset, int count) => Out.Write(buffer, offset, count);
        public override void Flush() { }
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private sealed class Target : IUapiTarget
    {
        public UapiDeviceState GetUapiState() => new() { ListenPort = 1 };
        public int ApplyUapi(UapiSetRequest request) => 0;
    }

    private static readonly string Pk = WgPrivateKey.Generate().PublicKey.ToHex();
    private static readonly string[] Fragments =
    [
        "get=1\n", "set=1\n", "\n", "=", "public_key=" + Pk, "public_key=", "allowed_ip=10.0.0.1/32", "allowed_ip=",
        "endpoint=[::1]:1", "listen_port=99999", "private_key=", Pk, "remove=true", "update_only=true", "\r", "\0",
        "replace_peers=true", "protocol_version=1", "fwmark=1", "errno=0", new string('x', 300),
    ];

    [Fact]
    public async Task Random_streams_never_throw_and_only_produce_well_formed_answers()
    {
        var rng = new Random(4242);   // fixed seed: a failure is reproducible
        var answer = new Regex(@"\A((listen_port=1\n)?errno=-?\d+\n\n)*\z");
        int ok = 0, rejected = 0;
        for (int round = 0; round < 400; round++)
        {
            var sb = new StringBuilder();
            // Mostly start with a real operation, so that the parsers behind it get exercised.
            if (rng.Next(4) != 0) sb.Append(rng.Next(2) == 0 ? "get=1\n" : "set=1\n");
            int parts = rng.Next(1, 12);
            for (int i = 0; i < parts; i++)
            {
                if (rng.Next(8) == 0) sb.Append((char)rng.Next(0, 256));
                else sb.Append(Fragments[rng.Next(Fragments.Length)]);
            }
            var stream = new ScriptedStream(Encoding.Latin1.GetBytes(sb.ToString()));
            var run = new UapiConnection(stream, new Target(), TimeSpan.FromSeconds(5)).RunAsync(CancellationToken.None);
            Assert.True(await Task.WhenAny(run, Task.Delay(5000)) == run, $"round {round} did not finish");
            await run;   // rethrows if it threw
            var output = Encoding.ASCII.GetString(stream.Out.ToArray());
            Assert.Matches(answer, output);
            ok += Regex.Count(output, "errno=0\n");
            rejected += Regex.Count(output, "errno=-");
        }
        // The streams exercise both paths (not just hang-ups).
        Assert.True(ok > 10 && rejected > 100, $"ok {ok}, rejected {rejected}");
    }
}
