using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>
/// The in-memory projection: the whole state of a session at a seq, from the nearest snapshot at or
/// below it plus the events after. Snapshots are a cache; <paramref name="useSnapshots"/> false folds from 0.
/// </summary>
public static class StateLoader
{
    public static Task<SvaState> LoadAsync(IEventStore store, string session, long atSeq = long.MaxValue,
        bool useSnapshots = true, CancellationToken ct = default) => LoadAsync(store, session, null, atSeq, useSnapshots, ct);

    /// <summary>The same, and <paramref name="book"/> (the recorder's: its next snapshots carry it on) learns where the events the
    /// state's rows were set by came from: what the snapshot it starts from carries, the rest (the tail's seqs, and all of them
    /// after a snapshot that carried none) resolved from the log as blame resolves them. A seq the log cannot resolve stays
    /// unknown: blame reads it from the log when asked, recording does not fail over it.</summary>
    public static async Task<SvaState> LoadAsync(IEventStore store, string session, ProvenanceBook? book, long atSeq = long.MaxValue,
        bool useSnapshots = true, CancellationToken ct = default)
    {
        SvaState? from = null;
        if (useSnapshots && atSeq > 0 && await store.LoadSnapshotAsync(session, atSeq, ct) is { } snap)
        {
            (from, var events) = StateSnapshot.DecodeWithSetAtEvents(snap);
            if (from is not null && book is not null) book.Seed(SetAtEventDto.Read(events));
        }
        var start = from?.Seq ?? 0;
        var state = atSeq <= start ? from ?? new SvaState() : await EventCodec.FoldAsync(store.ReadSessionDataAsync(session, start + 1, atSeq, ct), from, ct);
        if (book is not null && Provenance.IsComplete(state))
        {
            var missing = state.SetAt.Values.Where(s => !book.Knows(s)).Distinct().ToList();
            if (missing.Count > 0)
            {
                try
                {
                    foreach (var i in (await Queries.Blame.ResolveAsync(store, session, missing, ct)).Values)
                        book.Add(i.Seq, i.Type, i.Source, i.Op, i.Rule, i.CallSeq);
                }
                catch (StoredEventException) { /* left unknown: blame resolves it from the log, and says what is wrong there */ }
            }
        }
        return state;
    }
}
