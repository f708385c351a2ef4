using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.Formats.Generate;
using Sva.Projections;
using Sva.Projections.Queries;

BenchmarkSwitcher.FromAssembly(typeof(EngineBench).Assembly).Run(args);

/// <summary>A generated workload shared by the benchmarks: 20,000 events of 16 devices and 64 processes.</summary>
public static class Workload
{
    public static readonly WorkloadOptions Options = new(16, 64, 20_000, 1);
    public static readonly List<GeneratedCall> Calls = WorkloadGenerator.Generate(Options).ToList();
    public static readonly List<SvaEvent> Events = Calls.SelectMany(c => c.Events).ToList();
    public static readonly KernelVersion Kernel = KernelVersions.Get(Options.Kernel);
}

/// <summary>The kernel rules: decide (and apply) every call of the workload on a fresh state.</summary>
[MemoryDiagnoser]
public class EngineBench
{
    [Benchmark(Description = "SvaKernel.Execute, whole workload")]
    public long Execute()
    {
        var s = new SvaState();
        long n = 0;
        foreach (var c in Workload.Calls) n += SvaKernel.Execute(Workload.Kernel, s, c.Call).Count;
        return n;
    }

    [Benchmark(Description = "Evolve.Fold, whole workload")]
    public long Fold() => Evolve.Fold(Workload.Events).Seq;
}

/// <summary>Event and snapshot JSON: what appends, reads and time travel pay per event and per snapshot.</summary>
[MemoryDiagnoser]
public class JsonBench
{
    private List<(string Type, string Json)> encoded = null!;
    private string snapshot = null!;
    private SvaState state = null!;

    [GlobalSetup]
    public void Setup()
    {
        encoded = Workload.Events.Select(e => (EventTypes.NameOf(e), SvaJson.Serialize(e))).ToList();
        state = Evolve.Fold(Workload.Events);
        snapshot = state.ToSnapshotJson();
    }

    [Benchmark(Description = "encode all events (SvaJson.Serialize)")]
    public int Encode()
    {
        var n = 0;
        foreach (var e in Workload.Events) n += SvaJson.Serialize(e).Length;
        return n;
    }

    [Benchmark(Description = "decode all events (SvaJson.Deserialize)")]
    public int Decode()
    {
        var n = 0;
        foreach (var (t, j) in encoded) n += SvaJson.Deserialize(t, j) is null ? 0 : 1;
        return n;
    }

    [Benchmark(Description = "snapshot: ToSnapshotJson")]
    public int SnapshotWrite() => state.ToSnapshotJson().Length;

    [Benchmark(Description = "snapshot: FromSnapshotJson")]
    public long SnapshotRead() => SvaState.FromSnapshotJson(snapshot).Seq;
}

/// <summary>The pure queries of time travel and audit over the in-memory workload.</summary>
[MemoryDiagnoser]
public class QueryBench
{
    private List<LoggedEvent> logged = null!;
    private StatePredicate predicate = null!;
    private SvaState mid = null!;

    [GlobalSetup]
    public void Setup()
    {
        var at = DateTimeOffset.UnixEpoch;
        logged = Workload.Calls.SelectMany(c => c.Events.Select((e, i) => (c, e, i)))
            .Select((x, k) => new LoggedEvent(k + 1, at, $"w.sva:{x.c.Line}", x.i == 0 ? x.c.Call : null, x.e)).ToList();
        predicate = StatePredicate.Parse("leaked-pasids > 0 || handles >= 200");
        mid = Evolve.Fold(Workload.Events.Take(Workload.Events.Count / 2));
    }

    [Benchmark(Description = "BindingHistory.Build, whole workload")]
    public int History() => BindingHistory.Build(logged).Intervals.Count;

    [Benchmark(Description = "StateDiff.Compute, second half")]
    public int Diff() => StateDiff.Compute(mid, Workload.Events.Skip(Workload.Events.Count / 2).Select((e, i) => (mid.Seq + i + 1, e))).Changed.Count;

    [Benchmark(Description = "predicate evaluated after every event")]
    public long Predicate()
    {
        var s = new SvaState();
        long holds = 0;
        foreach (var e in Workload.Events) { Evolve.Apply(s, e); if (predicate.Holds(s)) holds++; }
        return holds;
    }
}
