using System.Collections.Concurrent;
using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>
/// The PASID tables, domains, mms, handles and devices as <see cref="ReadModelRow"/> documents, kept by Marten's async
/// daemon (off the append path; the writing command catches it up after its last batch commits, or
/// <c>sva projections daemon</c> does). It folds the events onto its copy of the session state and writes only the rows
/// those events touch. How far it got is Marten's checkpoint (the documents commit with it). The daemon hands it committed events only, in
/// global order, and never skips one; a copy that does not end one seq before the page is reloaded from the nearest
/// trusted snapshot plus the log's tail.
/// </summary>
public sealed class SvaReadModelProjection : IDocumentProjection
{
    public const string ProjectionName = "sva_read_model";
    // States of committed events only, each ending exactly where this projection's documents of its session end.
    private readonly ConcurrentDictionary<string, SvaState> states = new(StringComparer.Ordinal);

    public string Name => ProjectionName;
    public ProjectionMode Mode => ProjectionMode.Async;
    public IReadOnlyList<Type> DocumentTypes => [typeof(ReadModelRow)];
    /// <summary>It ran inline (in each append's transaction) up to b4ea429: such a database has it current at its head.</summary>
    public bool FormerlyInline => true;

    /// <summary>How many times the cached state could not be used and the session was reloaded.</summary>
    public int Refolds;

    public async Task ApplyAsync(IProjectionWriter writer, IReadOnlyList<ProjectedEvent> events, CancellationToken ct)
    {
        foreach (var batch in events.GroupBy(e => e.Session))
        {
            var list = batch.ToList();
            var session = batch.Key;
            var firstSeq = list[0].Seq;
            states.TryRemove(session, out var cached);
            try
            {
                var state = cached is not null && cached.Seq == firstSeq - 1
                    ? cached
                    : await ReloadAsync(writer, session, firstSeq - 1, ct);
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
                states[session] = state;
            }
            catch
            {
                states.TryRemove(session, out _);
                throw;
            }
        }
    }

    // The page's documents may not commit (the daemon retries the page): the cached copy is dropped on any failure above,
    // and a retried page starts one seq after what the documents hold, never after what a failed page folded.
    private async Task<SvaState> ReloadAsync(IProjectionWriter writer, string session, long toSeq, CancellationToken ct)
    {
        if (toSeq == 0) return new SvaState();
        Interlocked.Increment(ref Refolds);
        SvaState? from = null;
        if (await writer.LoadSnapshotAsync(session, toSeq, ct) is { } snap)
            from = StateSnapshot.Decode(snap); // null (an older shape, another seq): only a cache, fold instead
        var start = from?.Seq ?? 0;
        var state = start >= toSeq ? from! : await EventCodec.FoldAsync(writer.ReadSessionAsync(session, start + 1, toSeq, ct), from, ct);
        if (state.Seq != toSeq) throw new StoredEventException(session, toSeq, $"log ends at seq {state.Seq}");
        return state;
    }
}
