using Sva.Domain;
using Sva.Formats.Captures;

namespace Sva.Formats.Import;

/// <summary>One event decided for an observation. <paramref name="Call"/> is null for the <see cref="CaptureObserved"/>
/// event; <paramref name="FirstOfCall"/> marks the call's first event (where the call is recorded).</summary>
public sealed record DecidedEvent(SvaEvent Event, PlannedCall? Call, bool FirstOfCall);

/// <summary>
/// Observations in, events out, under one kernel version (pure apart from the state it owns): each observation
/// becomes its <see cref="CaptureObserved"/> event followed by the events of the calls it implies
/// (<see cref="ObservationMapper"/>), each decided by <see cref="SvaKernel.Execute"/> on the state left by the
/// previous one. The same observations on the same state always give the same events.
/// </summary>
public sealed class ImportDecider(KernelVersion version, SvaState state)
{
    public KernelVersion Version { get; } = version;
    public SvaState State { get; } = state;

    public IReadOnlyList<DecidedEvent> Decide(Observation o)
    {
        var mapped = ObservationMapper.Map(o, State);
        var list = new List<DecidedEvent>(1 + mapped.Calls.Count * 2);
        Evolve.Apply(State, mapped.Observed);
        list.Add(new DecidedEvent(mapped.Observed, null, false));
        foreach (var call in mapped.Calls)
        {
            var events = SvaKernel.Execute(Version, State, call.Call);
            for (var i = 0; i < events.Count; i++)
                list.Add(new DecidedEvent(events[i], call, i == 0));
        }
        return list;
    }

    /// <summary>True when the events a call produced say it was refused (a bind, unbind or other call failure).</summary>
    public static bool IsFailure(SvaEvent e) => e is BindFailed or UnbindRejected or CallFailed or KernelBug;

    /// <summary>Decides a whole capture in memory, without a database (tests, dry runs): every event with its source.</summary>
    public static async Task<(List<(SvaEvent Event, string Source, PlannedCall? Call)> Events, SvaState State)> DecideAllAsync(
        TextReader reader, string fileName, string format, string kernel, CancellationToken ct = default)
    {
        var decider = new ImportDecider(KernelVersions.Get(kernel), new SvaState());
        var all = new List<(SvaEvent, string, PlannedCall?)>();
        await foreach (var item in CaptureReader.ReadAsync(reader, fileName, format, lenient: true, ct))
        {
            if (item is not Observation o) continue;
            var source = o.Source.ToString();
            foreach (var d in decider.Decide(o)) all.Add((d.Event, source, d.Call));
        }
        return (all, decider.State);
    }
}
