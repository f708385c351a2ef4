using Sva.Formats.Script;

namespace Sva.Domain.Tests;

/// <summary>
/// A simulated machine under one kernel version, driven by .sva lines: each <see cref="Do"/> decides the
/// lines in order (Execute: the state follows) and returns the last call's outcome.
/// </summary>
public sealed class Sim
{
    public KernelVersion Version { get; }
    public SvaState State { get; } = new();
    public List<SvaEvent> Events { get; } = new();
    /// <summary>The events of the last call.</summary>
    public IReadOnlyList<SvaEvent> Last { get; private set; } = [];
    public List<CallOutcome> Outcomes { get; } = new();

    private Sim(string version) : this(Substitute?.Invoke(version) ?? KernelVersions.Get(version)) { }

    private Sim(KernelVersion version)
    {
        Version = version;
        Created?.Add(this);
    }

    /// <summary>A machine under a version built here (a kernel file's).</summary>
    public static Sim On(KernelVersion version) => new(version);

    /// <summary>When set (on this thread), the version a test names is replaced: the scenario table re-run under kernel files.</summary>
    [ThreadStatic] public static Func<string, KernelVersion?>? Substitute;

    /// <summary>When set (on this thread), every machine created is added: their events are compared between runs.</summary>
    [ThreadStatic] public static List<Sim>? Created;

    public static Sim On(string version, params string[] lines)
    {
        var sim = new Sim(version);
        if (lines.Length > 0) sim.Do(lines);
        return sim;
    }

    public CallOutcome Do(params string[] lines)
    {
        CallOutcome? o = null;
        foreach (var line in lines)
        {
            var script = ScriptParser.Parse(line, "test.sva");
            foreach (var l in script.Lines) o = Call(l.Call);
        }
        return o ?? throw new ArgumentException("no call in the lines");
    }

    public CallOutcome Call(KernelCall call)
    {
        Last = SvaKernel.Execute(Version, State, call);
        Events.AddRange(Last);
        var o = CallOutcome.Of(call, Last, State);
        if (Version.Origin is not null) o = o with { Rule = Version.Explain(o.Rule) };
        Outcomes.Add(o);
        return o;
    }

    public IEnumerable<T> LastOf<T>() where T : SvaEvent => Last.OfType<T>();

    public HandleObj Handle(string labelOrId) =>
        State.HandleById(State.HandleNames.TryGetValue(labelOrId, out var id) ? id : labelOrId)
        ?? throw new KeyNotFoundException($"no live handle {labelOrId}");

    public bool HandleLive(string label) =>
        State.HandleNames.TryGetValue(label, out var id) && State.HandleById(id) is not null;

    public DomainObj Domain(string id) => State.DomainById(id) ?? throw new KeyNotFoundException($"no domain {id}");
    public MmObj Mm(string id) => State.Mms[id];
    public DeviceObj Dev(string bdf) => State.Devices[ScriptParser.NormalizeBdf(bdf) ?? bdf];
    public bool PasidAllocated(int pasid) => State.Pasids.ContainsKey(pasid);
}

/// <summary>The versions of each generation, for [Theory] rows.</summary>
public static class V
{
    public static readonly string[] G1 = ["5.11", "5.13", "5.18"];
    public static readonly string[] G2 = ["6.2", "6.4", "6.6", "6.7"];
    public static readonly string[] G3 = ["6.8-rc1"];
    public static readonly string[] G4 = ["6.8", "6.9"];
    public static readonly string[] G5 = ["6.11"];
    public static IEnumerable<string> All => KernelVersions.All.Select(v => v.Name);
}
