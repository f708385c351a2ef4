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
        SvaState? from = null;
        if (useSnapshots && atSeq > 0)
        {
            var snap = await store.LoadSnapshotAsync(session, atSeq, ct);
            if (snap is not null)
            {
                try { from = SvaState.FromSnapshotJson(snap.Json); }
                catch (Exception) { from = null; } // a snapshot of an older shape is only a cache: fold instead
                if (from is not null && from.Seq != snap.Seq) from = null;
            }
        }
        var start = from?.Seq ?? 0;
        if (atSeq <= start) return from ?? new SvaState();
        return await EventCodec.FoldAsync(store.ReadSessionAsync(session, start + 1, atSeq, ct), from, ct);
    }
}
