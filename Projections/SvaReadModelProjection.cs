using System.Collections.Concurrent;
using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>
/// The PASID tables, domains, mms, handles and devices as <see cref="ReadModelRow"/> documents, updated inline (in the
/// append transaction, by Marten). It folds the appended events onto its copy of the session state and writes only the
/// rows those events touch. Its copy is used only when it ends exactly one seq before the batch; the store tells it to
/// forget a session whose append failed, so a rolled-back batch never leaks into it. Otherwise it re-folds from the log.
/// </summary>
public sealed class SvaReadModelProjection : IDocumentProjection
{
    public const string ProjectionName = "sva_read_model";
    // States of committed events only (ends exactly where the log of its session ended at some commit), and states of
    // appends in flight, promoted when the store reports their commit: a batch that rolls back (a version conflict with
    // another writer of the same session, say) never becomes the base of the next one.
    private readonly ConcurrentDictionary<string, SvaState> states = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Session, Guid LastEvent), SvaState> pending = new();

    public string Name => ProjectionName;
    public ProjectionMode Mode => ProjectionMode.Inline;
    public IReadOnlyList<Type> DocumentTypes => [typeof(ReadModelRow)];

    /// <summary>How many times the cached state could not be used and the session was re-folded.</summary>
    public int Refolds;

    public async Task ApplyAsync(IProjectionWriter writer, IReadOnlyList<ProjectedEvent> events, CancellationToken ct)
    {
        foreach (var batch in events.GroupBy(e => e.Session))
        {
            var list = batch.ToList();
            var session = batch.Key;
            var firstSeq = list[0].Seq;
            var state = states.TryRemove(session, out var cached) && cached.Seq == firstSeq - 1
                ? cached
                : await RefoldAsync(writer, session, firstSeq - 1, ct);
            var touched = new HashSet<(string, string)>();
            foreach (var e in list)
            {
                if (e.Seq != state.Seq + 1) throw new StoredEventException(session, e.Seq, $"expected seq {state.Seq + 1}");
                var ev = (SvaEvent)e.Data;
                foreach (var t in SvaRows.Touched(state, ev)) touched.Add(t);
                Evolve.Apply(state, ev);
            }
            foreach (var (table, key) in touched)
            {
                if (SvaRows.Lookup(state, table, key) is { } row) writer.Store(ReadModelRow.From(session, row));
                else writer.Delete<ReadModelRow>(ReadModelRow.IdOf(session, table, key));
            }
            if (writer.EventsCommitted) states[session] = state;
            else pending[(session, list[^1].Id)] = state;
        }
    }

    public void Committed(string session, Guid lastEventId)
    {
        if (pending.TryRemove((session, lastEventId), out var s)) states[session] = s;
    }

    public void Forget(string session, Guid lastEventId)
    {
        pending.TryRemove((session, lastEventId), out _);
        states.TryRemove(session, out _);
    }

    private async Task<SvaState> RefoldAsync(IProjectionWriter writer, string session, long toSeq, CancellationToken ct)
    {
        if (toSeq == 0) return new SvaState();
        Interlocked.Increment(ref Refolds);
        var state = await EventCodec.FoldAsync(writer.ReadSessionAsync(session, 1, toSeq, ct), null, ct);
        if (state.Seq != toSeq) throw new StoredEventException(session, toSeq, $"log ends at seq {state.Seq}");
        return state;
    }
}
