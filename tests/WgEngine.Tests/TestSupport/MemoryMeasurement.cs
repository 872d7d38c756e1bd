namespace WgEngine.Tests.TestSupport;

/// <summary>Tests that measure process-wide memory run in this collection, after and apart from all others.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasurement
{
    public const string Name = "Memory measurement (not parallel)";
}
