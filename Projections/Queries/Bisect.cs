using System.Collections.Concurrent;
using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections.Queries;

/// <summary>One evaluation of the predicate during a bisect: at which seq, whether it held, and how that state was had.</summary>
public sealed record BisectProbe(long Seq, bool Holds, string Via);

/// <summary>
/// The answer of a bisect. <see cref="Seq"/>: the first seq at which the predicate holds (0: already on the empty
/// state), null when it does not hold at the end (binary search) or nowhere (linear). <see cref="EventsFolded"/>:
/// events folded in the final linear stretch (or in the whole scan).
/// </summary>
public sealed record BisectResult(long? Seq, IReadOnlyList<BisectProbe> Probes, long EventsFolded, bool Linear);

/// <summary>
/// <c>sva bisect</c>: the first seq at which a predicate over the state holds. Binary search over the session's
/// snapshots (each probe is one snapshot load, no fold) down to two neighbouring snapshots, then a linear fold
/// of the stretch between them, evaluating after every event. Like git bisect it assumes the predicate, once true,
/// stays true; <c>linear</c> scans every seq from 0 instead (exact for any predicate).
/// </summary>
public static class Bisect
{
    public static async Task<BisectResult> UntilAsync(IEventStore store, string session, long lastSeq, Func<SvaState, bool> holds,
        bool linear = false, CancellationToken ct = default)
    {
        var probes = new List<BisectProbe>();
        if (linear) return await LinearAsync(store, session, new SvaState(), lastSeq, holds, probes, true, ct);

        var empty = new SvaState();
        var at0 = holds(empty);
        probes.Add(new BisectProbe(0, at0, "empty state"));
        if (at0) return new BisectResult(0, probes, 0, false);
        var end = await TimeTravel.LoadAsync(store, session, lastSeq, true, ct);
        var atEnd = holds(end.State);
        probes.Add(new BisectProbe(lastSeq, atEnd, Via(end)));
        if (!atEnd) return new BisectResult(null, probes, 0, false);

        var points = new List<long> { 0 };
        points.AddRange((await store.ListSnapshotsAsync(session, ct)).Select(s => s.Seq).Where(s => s > 0 && s < lastSeq));
        points.Add(lastSeq);
        int lo = 0, hi = points.Count - 1; // holds(points[lo]) is false, holds(points[hi]) is true
        SvaState? loState = empty;
        while (hi - lo > 1)
        {
            var mid = lo + (hi - lo) / 2;
            var loaded = await TimeTravel.LoadAsync(store, session, points[mid], true, ct);
            var h = holds(loaded.State);
            probes.Add(new BisectProbe(points[mid], h, Via(loaded)));
            if (h) hi = mid;
            else { lo = mid; loState = loaded.State; }
        }
        return await LinearAsync(store, session, loState!, points[hi], holds, probes, false, ct);
    }

    private static string Via(LoadedState l) => l.SnapshotSeq == 0 ? $"folded {l.EventsFolded} events" : l.EventsFolded == 0
        ? $"snapshot {l.SnapshotSeq}" : $"snapshot {l.SnapshotSeq} + {l.EventsFolded} events";

    private static async Task<BisectResult> LinearAsync(IEventStore store, string session, SvaState from, long toSeq, Func<SvaState, bool> holds,
        List<BisectProbe> probes, bool linear, CancellationToken ct)
    {
        var s = from;
        if (linear && holds(s)) { probes.Add(new BisectProbe(s.Seq, true, "empty state")); return new BisectResult(s.Seq, probes, 0, true); }
        var start = s.Seq;
        await foreach (var e in store.ReadSessionAsync(session, s.Seq + 1, toSeq, ct))
        {
            if (e.Seq != s.Seq + 1) throw new StoredEventException(session, e.Seq, $"expected seq {s.Seq + 1} (gap or reorder in the log)");
            Evolve.Apply(s, EventCodec.Decode(e));
            if (holds(s))
            {
                probes.Add(new BisectProbe(s.Seq, true, $"linear from {start}"));
                return new BisectResult(s.Seq, probes, s.Seq - start, linear);
            }
        }
        // Only reachable when the predicate is not monotone between two probes (or, linear, never holds).
        return new BisectResult(linear ? null : toSeq, probes, s.Seq - start, linear);
    }

    /// <summary>The first finding of <paramref name="kind"/> (a <see cref="FindingKinds"/> name) by the invariant checks over the whole log.</summary>
    public static async Task<(Finding? First, long EventsChecked)> FirstFindingAsync(IEventStore store, string session, string kind, CancellationToken ct = default)
    {
        // Every kind but 'leak' is reported at the event that shows it, from the events up to it only: a prefix of the log
        // that has one has the same first one. Try growing prefixes (in memory) before a streaming pass over everything.
        if (kind != FindingKinds.Leak)
        {
            var prefix = new List<(long, SvaEvent)>();
            foreach (var size in new long[] { 16_384, 65_536, 262_144 })
            {
                await foreach (var e in store.ReadSessionAsync(session, prefix.Count + 1, size, ct))
                    prefix.Add((e.Seq, EventCodec.Decode(e)));
                var found = Checks.Run(prefix).Where(f => f.Kind == kind).OrderBy(f => f.Seq).FirstOrDefault();
                if (found is not null) return (found, prefix.Count);
                if (prefix.Count < size) return (null, prefix.Count); // that was the whole log
            }
        }
        // Checks.Run takes a synchronous sequence: stream the log into it through a bounded queue, never the whole log in memory.
        using var queue = new BlockingCollection<(long, SvaEvent)>(boundedCapacity: 8192);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        long count = 0;
        var producer = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in store.ReadSessionAsync(session, 1, long.MaxValue, stop.Token))
                {
                    queue.Add((e.Seq, EventCodec.Decode(e)), stop.Token);
                    count++;
                }
            }
            finally { queue.CompleteAdding(); }
        }, stop.Token);
        IReadOnlyList<Finding> findings;
        try
        {
            findings = Checks.Run(queue.GetConsumingEnumerable(stop.Token));
        }
        catch
        {
            stop.Cancel(); // the producer may be blocked on a full queue
            try { await producer; } catch { /* the consumer's exception is the one to report */ }
            throw;
        }
        await producer; // a read error surfaces here (the consumer saw the queue end early)
        return (findings.Where(f => f.Kind == kind).OrderBy(f => f.Seq).FirstOrDefault(), count);
    }
}
