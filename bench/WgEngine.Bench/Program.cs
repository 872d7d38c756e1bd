using BenchmarkDotNet.Running;

// Usage: dotnet run -c Release --project bench/WgEngine.Bench -- --filter '*' [--job short] [--inProcess]
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
