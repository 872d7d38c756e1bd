using BenchmarkDotNet.Running;
using WgEngine.Bench;

// Usage: dotnet run -c Release --project bench/WgEngine.Bench -- --filter '*' [--job short] [--inProcess]
//        dotnet run -c Release --project bench/WgEngine.Bench -- --cipher-limit [packet size, default 1420]
if (args.Length > 0 && args[0] == "--cipher-limit")
{
    int size = 1420;
    if (args.Length > 1 && !int.TryParse(args[1], out size))
    {
        Console.Error.WriteLine($"--cipher-limit: '{args[1]}' is not a packet size in bytes.");
        return 2;
    }
    return CipherLimit.Run(size);
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
