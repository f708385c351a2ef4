using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>
/// The in-memory projection: the whole state of a session at a seq, from the nearest snapshot at or
/// below it plus the events after. Snapshots are a cache; <paramref name="useSnapshots"/> false folds from 0.
/// </summary>
public static class StateLoader
{
    public static async Task<SvaState> LoadAsync(IEventStore store, string session, long atSeq = long.MaxValue,
        bool useSnapshots = true, CancellationToken ct = default)
    {
        var from = useSnapshots ? await Queries.TimeTravel.NearestSnapshotAsync(store, session, atSeq, ct) : null;
        var start = from?.Seq ?? 0;
        if (atSeq <= start) return from ?? new SvaState();
        return await EventCodec.FoldAsync(store.ReadSessionDataAsync(session, start + 1, atSeq, ct), from, ct);
    }
}
