namespace WgEngine.Tests.Architecture;

/// <summary>
/// The engine's namespaces point only downwards: no namespace uses, directly or through others, a namespace
/// that uses it. The shared contracts (peer and interface models, errors, the backend interface, counters) live
/// in WgEngine.Contracts, which every layer may use and which uses none of them.
/// </summary>
public class NamespaceCycleTests
{
    private static string EngineAssemblyPath => typeof(WgEngine.Crypto.WgKey).Assembly.Location;

    [Fact]
    public void Engine_has_no_namespace_cycle()
    {
        var graph = NamespaceGraph.Load(EngineAssemblyPath, "WgEngine");
        var cycles = NamespaceGraph.FindCycles(graph.Edges);
        Assert.True(cycles.Count == 0, "Namespace cycles in WgEngine:\n" + string.Join("\n", cycles));
    }

    [Fact]
    public void Contracts_use_no_other_engine_namespace()
    {
        var graph = NamespaceGraph.Load(EngineAssemblyPath, "WgEngine");
        // The layers below the contracts hold the values of the models: keys (Crypto), prefixes (Net), access
        // rules, limits and quotas (Policy, which itself uses only Net and PacketPlane).
        var allowed = new HashSet<string> { "WgEngine.Crypto", "WgEngine.Net", "WgEngine.Policy", "WgEngine.PacketPlane" };
        var upward = graph.Edges.Where(e => e.Key.From == "WgEngine.Contracts" && !allowed.Contains(e.Key.To)).Select(e => e.Value).ToList();
        Assert.True(upward.Count == 0, "WgEngine.Contracts uses: " + string.Join("; ", upward));
    }

    [Fact]
    public void Graph_sees_references_in_method_bodies()
    {
        // The engine's Gateway layer builds a WgDevice only inside method bodies of UserspaceBackend: the graph must see it.
        var graph = NamespaceGraph.Load(EngineAssemblyPath, "WgEngine");
        Assert.Contains(("WgEngine.Gateway", "WgEngine.Device"), graph.Edges.Keys);
        Assert.DoesNotContain(graph.Edges.Keys, e => e.From == e.To);
    }

    [Fact]
    public void FindCycles_names_each_cycle_with_its_type_references()
    {
        var edges = new Dictionary<(string, string), string>
        {
            [("A", "B")] = "A.X -> B.Y",
            [("B", "C")] = "B.Y -> C.Z",
            [("C", "A")] = "C.Z -> A.X",
            [("C", "D")] = "C.Z -> D.W",
            [("E", "F")] = "E.V -> F.U",
            [("F", "E")] = "F.U -> E.V",
        };
        var cycles = NamespaceGraph.FindCycles(edges);
        Assert.Equal(2, cycles.Count);
        Assert.Contains(cycles, c => c.StartsWith("A -> B -> C -> A", StringComparison.Ordinal) && c.Contains("C.Z -> A.X", StringComparison.Ordinal));
        Assert.Contains(cycles, c => c.StartsWith("E -> F -> E", StringComparison.Ordinal));
        Assert.Empty(NamespaceGraph.FindCycles(new Dictionary<(string, string), string> { [("A", "B")] = "", [("B", "C")] = "" }));
    }
}
