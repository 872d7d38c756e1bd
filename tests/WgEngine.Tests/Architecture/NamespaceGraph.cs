using Mono.Cecil;
using Mono.Cecil.Cil;

namespace WgEngine.Tests.Architecture;

/// <summary>
/// Which namespace of an assembly uses which: an edge A -> B when a type of A names a type of B in its base
/// type, interfaces, fields, properties, events, method signatures, local variables or method bodies (the IL's
/// type, method and field operands). Nested and compiler-generated types count for the namespace of the type
/// that declares them. Read with Mono.Cecil, so method bodies are seen, not only signatures.
/// </summary>
internal sealed class NamespaceGraph
{
    /// <summary>For each edge (from, to) one example "FromType -> ToType" that makes it.</summary>
    public Dictionary<(string From, string To), string> Edges { get; } = [];

    public static NamespaceGraph Load(string assemblyPath, string rootNamespace)
    {
        var graph = new NamespaceGraph();
        using var assembly = AssemblyDefinition.ReadAssembly(assemblyPath);
        foreach (var type in assembly.MainModule.GetTypes())
        {
            var from = NamespaceOf(type);
            if (!InRoot(from, rootNamespace)) continue;
            foreach (var used in ReferencedTypes(type))
            {
                var to = NamespaceOf(used);
                if (to == from || !InRoot(to, rootNamespace)) continue;
                graph.Edges.TryAdd((from, to), $"{Outermost(type).FullName} -> {Outermost(used).FullName}");
            }
        }
        return graph;
    }

    private static bool InRoot(string ns, string root) => ns == root || ns.StartsWith(root + ".", StringComparison.Ordinal);

    private static TypeReference Outermost(TypeReference type)
    {
        while (type.DeclaringType is not null) type = type.DeclaringType;
        return type;
    }

    private static string NamespaceOf(TypeReference type) => Outermost(type).Namespace;

    private static IEnumerable<TypeReference> ReferencedTypes(TypeDefinition type)
    {
        if (type.BaseType is not null) foreach (var t in Expand(type.BaseType)) yield return t;
        foreach (var i in type.Interfaces) foreach (var t in Expand(i.InterfaceType)) yield return t;
        foreach (var f in type.Fields) foreach (var t in Expand(f.FieldType)) yield return t;
        foreach (var p in type.Properties) foreach (var t in Expand(p.PropertyType)) yield return t;
        foreach (var e in type.Events) foreach (var t in Expand(e.EventType)) yield return t;
        foreach (var m in type.Methods)
        {
            foreach (var t in Expand(m.ReturnType)) yield return t;
            foreach (var p in m.Parameters) foreach (var t in Expand(p.ParameterType)) yield return t;
            if (!m.HasBody) continue;
            foreach (var v in m.Body.Variables) foreach (var t in Expand(v.VariableType)) yield return t;
            foreach (var instruction in m.Body.Instructions)
            {
                switch (instruction.Operand)
                {
                    case TypeReference t:
                        foreach (var x in Expand(t)) yield return x;
                        break;
                    case MethodReference method:
                        foreach (var x in Expand(method.DeclaringType)) yield return x;
                        foreach (var x in Expand(method.ReturnType)) yield return x;
                        foreach (var p in method.Parameters) foreach (var x in Expand(p.ParameterType)) yield return x;
                        if (method is GenericInstanceMethod gm) foreach (var a in gm.GenericArguments) foreach (var x in Expand(a)) yield return x;
                        break;
                    case FieldReference field:
                        foreach (var x in Expand(field.DeclaringType)) yield return x;
                        foreach (var x in Expand(field.FieldType)) yield return x;
                        break;
                }
            }
        }
    }

    /// <summary>A type and the types inside it: element types of arrays, pointers and by-refs, generic arguments.</summary>
    private static IEnumerable<TypeReference> Expand(TypeReference type)
    {
        switch (type)
        {
            case GenericParameter:
                yield break;
            case GenericInstanceType generic:
                foreach (var t in Expand(generic.ElementType)) yield return t;
                foreach (var a in generic.GenericArguments) foreach (var t in Expand(a)) yield return t;
                yield break;
            case TypeSpecification spec:
                foreach (var t in Expand(spec.ElementType)) yield return t;
                yield break;
            default:
                yield return type;
                yield break;
        }
    }

    /// <summary>
    /// Every cycle between namespaces, one per strongly connected component of more than one namespace (Tarjan),
    /// each written as "A -> B -> A" with the type reference that makes each step.
    /// </summary>
    public static List<string> FindCycles(IReadOnlyDictionary<(string From, string To), string> edges)
    {
        var next = edges.Keys.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).OrderBy(n => n, StringComparer.Ordinal).ToList());
        var nodes = edges.Keys.SelectMany(e => new[] { e.From, e.To }).Distinct().OrderBy(n => n, StringComparer.Ordinal).ToList();
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var onStack = new HashSet<string>();
        var components = new List<List<string>>();
        void Visit(string v)
        {
            index[v] = low[v] = index.Count;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in next.GetValueOrDefault(v) ?? [])
            {
                if (!index.ContainsKey(w)) { Visit(w); low[v] = Math.Min(low[v], low[w]); }
                else if (onStack.Contains(w)) low[v] = Math.Min(low[v], index[w]);
            }
            if (low[v] != index[v]) return;
            var component = new List<string>();
            string x;
            do { x = stack.Pop(); onStack.Remove(x); component.Add(x); } while (x != v);
            if (component.Count > 1) components.Add(component);
        }
        foreach (var n in nodes) if (!index.ContainsKey(n)) Visit(n);

        var cycles = new List<string>();
        foreach (var component in components)
        {
            // One concrete cycle through the component's first namespace: a shortest path back to it (BFS).
            var members = component.ToHashSet();
            var start = component.Min(StringComparer.Ordinal)!;
            var parent = new Dictionary<string, string>();
            var queue = new Queue<string>([start]);
            string? last = null;
            while (queue.Count > 0 && last is null)
            {
                var v = queue.Dequeue();
                foreach (var w in next.GetValueOrDefault(v) ?? [])
                {
                    if (!members.Contains(w)) continue;
                    if (w == start) { last = v; break; }
                    if (parent.TryAdd(w, v)) queue.Enqueue(w);
                }
            }
            var path = new List<string> { start };
            for (var v = last!; v != start; v = parent[v]) path.Insert(1, v);
            path.Add(start);
            var steps = string.Join("; ", path.Zip(path.Skip(1)).Select(s => edges[(s.First, s.Second)]));
            cycles.Add($"{string.Join(" -> ", path)} (namespaces in the cycle: {string.Join(", ", component.Order(StringComparer.Ordinal))}; {steps})");
        }
        return cycles;
    }
}
