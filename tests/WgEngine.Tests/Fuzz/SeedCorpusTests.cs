using WgEngine.Fuzz;
using WgEngine.Tests.TestSupport;

namespace WgEngine.Tests.Fuzz;

/// <summary>
/// The committed seed corpus (fuzz/corpus) against the harness, without AFL: every seed runs clean
/// through its target, and the handshake and transport seeds still authenticate against the harness's
/// fixed keys (a stale corpus would leave the fuzzer stuck in front of the first MAC check).
/// </summary>
public class SeedCorpusTests
{
    private static string CorpusRoot => Path.Combine(RepoPaths.Root, "fuzz", "corpus");

    public static TheoryData<string> TargetNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Targets.Names) data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void EverySeedOfATargetRunsWithoutException(string target)
    {
        var dir = Path.Combine(CorpusRoot, target);
        var files = Directory.GetFiles(dir);
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var ex = Record.Exception(() => Targets.Run(target, File.ReadAllBytes(file)));
            Assert.True(ex is null, $"{target}/{Path.GetFileName(file)}: {ex}");
        }
    }

    [Fact]
    public void CommittedSeedsReachThePathsTheySeed()
    {
        // Throws with the failing check's description when a seed no longer authenticates or routes.
        CorpusGenerator.Verify(CorpusRoot);
    }

    [Fact]
    public void GeneratorWritesAVerifiedCorpusForEveryTarget()
    {
        var dir = Path.Combine(Path.GetTempPath(), "wg-fuzz-corpus-" + Guid.NewGuid().ToString("N"));
        try
        {
            Assert.Equal(0, CorpusGenerator.Generate(dir));
            foreach (var name in Targets.Names)
                Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir, name)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AllModeSelectsTheTargetByTheFirstByte()
    {
        // "selftest" is outside the selector table, so a crash here can only come from the named target.
        var planted = "WG"u8.ToArray();
        Assert.Throws<InvalidOperationException>(() => Targets.Run(Targets.SelfTest, planted));
        int ipheader = Array.IndexOf(Targets.Names, "ipheader");
        Assert.Null(Record.Exception(() => Targets.Run("all", [(byte)ipheader, .. planted])));
    }

    [Fact]
    public void ReplayedTransportPacketIsCountedAsReplay()
    {
        // The transport target's own invariant, exercised directly: a second delivery must be a replay.
        var seed = File.ReadAllBytes(Path.Combine(CorpusRoot, "dispatch", "transport-echo-v4"));
        var world = new FuzzWorld();
        world.DispatchAndDrain(seed);
        long replayed = world.Device.Counters.Replayed, echoes = world.Device.Counters.EchoReplies;
        world.DispatchAndDrain(seed);
        Assert.Equal(replayed + 1, world.Device.Counters.Replayed);
        Assert.Equal(echoes, world.Device.Counters.EchoReplies);
    }
}
