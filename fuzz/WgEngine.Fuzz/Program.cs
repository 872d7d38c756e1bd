using System.Runtime.InteropServices;
using SharpFuzz;
using WgEngine.Fuzz;

// WgEngine.Fuzz <target>                  fuzz loop for afl-fuzz (SharpFuzz fork server); input on stdin
// WgEngine.Fuzz replay <target> <path>... runs files (or every file of folders) once, outside AFL
// WgEngine.Fuzz generate <corpus-root>    writes and verifies the seed corpus
// WgEngine.Fuzz list                      target names; "all" picks the target by the first input byte
// Instrumented code writes coverage to SharpFuzz's trace map, which only Fuzzer.Run points at AFL's
// shared memory: until then (warm-up, replay, generate) it must point at a scratch map.
unsafe
{
    if (SharpFuzz.Common.Trace.SharedMem == null) SharpFuzz.Common.Trace.SharedMem = (byte*)NativeMemory.AllocZeroed(1 << 16);
}
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: WgEngine.Fuzz <target>|replay <target> <path>...|generate <dir>|list");
    return 2;
}
switch (args[0])
{
    case "list":
        Console.WriteLine(string.Join(Environment.NewLine, Targets.Names.Append("all")));
        return 0;
    case "generate" when args.Length == 2:
        return CorpusGenerator.Generate(args[1]);
    case "replay" when args.Length >= 3 && Targets.IsTarget(args[1]):
        return Replay(args[1], args[2..]);
    default:
        if (!Targets.IsTarget(args[0]))
        {
            Console.Error.WriteLine($"Unknown target '{args[0]}'. Targets: {string.Join(", ", Targets.Names)}, all.");
            return 2;
        }
        string target = args[0];
        Targets.Warm(); // keys, devices and JIT before the fork server: the first input is then like the rest
        Fuzzer.Run(stream =>
        {
            using var ms = new MemoryStream();
            stream.CopyTo(ms);
            Targets.Run(target, ms.GetBuffer().AsSpan(0, (int)ms.Length));
        });
        return 0;
}

static int Replay(string target, string[] paths)
{
    int failed = 0, ran = 0;
    foreach (var path in paths)
    {
        var files = Directory.Exists(path) ? Directory.GetFiles(path) : [path];
        foreach (var file in files)
        {
            ran++;
            try { Targets.Run(target, File.ReadAllBytes(file)); }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"CRASH {file}: {e.GetType().Name}: {e.Message}");
                Console.WriteLine(e.StackTrace);
            }
        }
    }
    Console.WriteLine($"replayed {ran} inputs on {target}: {failed} crashed");
    return failed == 0 ? 0 : 1;
}
