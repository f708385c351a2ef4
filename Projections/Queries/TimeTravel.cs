using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections.Queries;

/// <summary>How a state at a seq was obtained: from which snapshot (0: none, folded from the empty state) and how many events were folded on top.</summary>
public sealed record LoadedState(SvaState State, long SnapshotSeq, long EventsFolded)
{
    /// <summary>What the snapshot the state was loaded from carried of the events its rows were set by (blame's shortcut:
    /// <see cref="Blame.ResolveAsync(IEventStore, string, IEnumerable{long}, IReadOnlyDictionary{long, SetAtInfo}?, CancellationToken)"/>),
    /// keyed by seq; empty when it carried none.</summary>
    public IReadOnlyDictionary<long, SetAtInfo> SetAtEvents { get; init; } = new Dictionary<long, SetAtInfo>();
}

/// <summary>
/// Time travel: the state of a session at any seq = the nearest snapshot at or below it + the events after it.
/// Snapshots are only a cache: a missing, unreadable or mismatched snapshot falls back to an earlier start.
/// </summary>
public static class TimeTravel
{
    /// <summary>At most this many events of the tail are read in the statement that finds it (a snapshot is every 1,024).</summary>
    private const int TailCap = 8192;

    public static async Task<LoadedState> LoadAsync(IEventStore store, string session, long atSeq, bool useSnapshots = true, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(atSeq);
        if (atSeq == 0) return new LoadedState(new SvaState(), 0, 0);
        // The nearest snapshot the log vouches for (a forged or altered one is passed over), then the events after it. The tail
        // after the newest snapshot row is read (and its JSON parsed) on one connection while the snapshot is fetched, checked
        // and decoded on another: the two overlap instead of adding up (README, "Snapshots"). When the snapshot that loads is an
        // earlier one (the newest is untrusted or does not decode), the events between are read as well.
        if (useSnapshots)
        {
            var snapTask = Task.Run(() => NearestSnapshotAsync(store, session, atSeq, ct), ct);
            var tailTask = Task.Run(async () =>
            {
                var (after, rows) = await store.ReadTailAfterSnapshotAsync(session, atSeq, TailCap, ct);
                return (After: after, Events: Decode(session, rows, after + 1));
            }, ct);
            SvaState? from;
            (long After, List<SvaEvent> Events) tail;
            try { from = await snapTask; }
            finally { tail = await tailTask; }
            var snapSeq = from?.Seq ?? 0;
            var s = from ?? new SvaState();
            if (s.Seq < tail.After) s = await EventCodec.FoldAsync(store.ReadSessionDataAsync(session, s.Seq + 1, tail.After, ct), s, ct);
            for (var i = (int)Math.Clamp(s.Seq - tail.After, 0, tail.Events.Count); i < tail.Events.Count; i++) Evolve.Apply(s, tail.Events[i]);
            // The tail read is capped (TailCap events): a longer stretch (snapshots deleted, an old session) is folded page by page.
            if (s.Seq < atSeq && tail.Events.Count == TailCap) s = await EventCodec.FoldAsync(store.ReadSessionDataAsync(session, s.Seq + 1, atSeq, ct), s, ct);
            if (s.Seq != atSeq) throw new StoredEventException(session, s.Seq + 1, $"the log ends at seq {s.Seq}, before seq {atSeq}");
            return new LoadedState(s, snapSeq, atSeq - snapSeq);
        }
        var state = await EventCodec.FoldAsync(store.ReadSessionDataAsync(session, 1, atSeq, ct), null, ct);
        if (state.Seq != atSeq) throw new StoredEventException(session, state.Seq + 1, $"the log ends at seq {state.Seq}, before seq {atSeq}");
        return new LoadedState(state, 0, atSeq);
    }

    /// <summary>The state of the nearest snapshot at or below <paramref name="atOrBelowSeq"/> that the log vouches for and that
    /// parses (its seq is the state's <see cref="SvaState.Seq"/>), or null: the one snapshot loader of the code (state, time
    /// travel, the recorder's reload, the timeline).</summary>
    public static async Task<SvaState?> NearestSnapshotAsync(IEventStore store, string session, long atOrBelowSeq, CancellationToken ct = default) =>
        atOrBelowSeq > 0 && await store.LoadSnapshotAsync(session, atOrBelowSeq, ct) is { } snap ? StateSnapshot.Decode(snap) : null;

    private static List<SvaEvent> Decode(string session, IReadOnlyList<EventData> rows, long expected)
    {
        var list = new List<SvaEvent>(rows.Count);
        foreach (var e in rows)
        {
            if (e.Seq != expected) throw new StoredEventException(session, e.Seq, $"expected seq {expected} (gap or reorder in the log)");
            list.Add(EventCodec.Decode(e));
            expected++;
        }
        return list;
    }

    private static async Task<List<SvaEvent>> ReadEventsAsync(IEventStore store, string session, long from, long to, CancellationToken ct)
    {
        var list = new List<SvaEvent>((int)Math.Min(to - from + 1, 1 << 16));
        var expected = from;
        // Type and data only: the headers (hash, metadata, snapshot digest) are not needed to fold, and extracting them was
        // the largest part of a time travel (README, "Snapshots").
        await foreach (var e in store.ReadSessionDataAsync(session, from, to, ct).ConfigureAwait(false))
        {
            if (e.Seq != expected) throw new StoredEventException(session, e.Seq, $"expected seq {expected} (gap or reorder in the log)");
            list.Add(EventCodec.Decode(e));
            expected++;
        }
        return list;
    }

    /// <summary>The event at <paramref name="seq"/> and the call that produced it (the call is stored on a call's first event:
    /// looked up among the events just before, with the same source line), or null when there is no such seq.</summary>
    public static async Task<(LoggedEvent Event, KernelCall? Call, long? CallSeq)?> EventWithCallAsync(IEventStore store, string session, long seq,
        CancellationToken ct = default)
    {
        var window = new List<LoggedEvent>();
        await foreach (var e in store.ReadSessionAsync(session, Math.Max(1, seq - 255), seq, ct)) window.Add(LoggedEvent.Of(e));
        if (window.Count == 0 || window[^1].Seq != seq) return null;
        var target = window[^1];
        for (var i = window.Count - 1; i >= 0; i--)
        {
            if (window[i].Source != target.Source) break;
            if (window[i].Call is { } c) return (target, c, window[i].Seq);
        }
        return (target, null, null);
    }

    /// <summary>The session's events with fromSeq &lt;= seq &lt;= toSeq, decoded, with the metadata this project's audit needs.</summary>
    public static async IAsyncEnumerable<LoggedEvent> ReadAsync(IEventStore store, string session, long fromSeq = 1, long toSeq = long.MaxValue,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var e in store.ReadSessionAsync(session, fromSeq, toSeq, ct))
            yield return LoggedEvent.Of(e);
    }
}

/// <summary>An event of the log with its seq, time, source line and (on the first event of a call) the call.</summary>
public sealed record LoggedEvent(long Seq, DateTimeOffset RecordedAt, string? Source, KernelCall? Call, SvaEvent Event)
{
    public static LoggedEvent Of(StoredEvent e)
    {
        var meta = EventCodec.Metadata(e);
        return new LoggedEvent(e.Seq, e.RecordedAt, meta.Source, meta.Call, EventCodec.Decode(e));
    }
}
