using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>A difference between the stored read model and the one recomputed from the log.</summary>
public sealed record RowDifference(string Table, string Key, string? Stored, string? Expected);

/// <summary>Rebuild and verification of the read model (an async projection) from the log.</summary>
public static class ReadModel
{
    /// <summary>The rows of a session's read model as stored (Marten documents).</summary>
    public static async Task<IReadOnlyList<ReadModelRow>> StoredRowsAsync(IEventStore store, string session, CancellationToken ct = default) =>
        await store.QueryAsync<ReadModelRow>(r => r.Session == session, ct);

    /// <summary>The table name under which a read model that is behind the log is reported.</summary>
    public const string HeadTable = "read_model_head";

    /// <summary>Compares the stored rows of a session with the rows of fold(log) up to where the read model got: the
    /// session's events at or below the projection's checkpoint (Marten's daemon commits the documents with it, in global
    /// order, so that is a prefix of the session). A read model behind the session's last seq is itself a difference
    /// (<see cref="HeadTable"/>): the daemon has not projected every event yet.</summary>
    public static async Task<List<RowDifference>> VerifySessionAsync(IEventStore store, string session, CancellationToken ct = default)
    {
        var checkpoint = (await store.ProjectionStatusAsync(ct)).Projections.Single(p => p.Name == SvaReadModelProjection.ProjectionName).Position;
        var last = (await store.GetSessionAsync(session, ct))?.Version ?? 0;
        var state = await EventCodec.FoldAsync(Projected(store.ReadSessionAsync(session, ct: ct), checkpoint, ct), ct: ct);
        var head = state.Seq;
        var diffs = Compare(await StoredRowsAsync(store, session, ct), SvaRows.All(state).Select(r => ReadModelRow.From(session, r)));
        if (head != last)
            diffs.Insert(0, new RowDifference(HeadTable, session, $"seq {head}", $"seq {last} (the daemon has not projected seqs {head + 1}..{last} yet: 'sva projections daemon --once')"));
        return diffs;
    }

    /// <summary>Recomputes the whole read model from the log through Marten's daemon (its per-event pipeline: the comparison
    /// for <see cref="RebuildAsync"/>).</summary>
    public static Task RebuildWithDaemonAsync(IEventStore store, TimeSpan timeout, CancellationToken ct = default) =>
        store.RebuildProjectionAsync(SvaReadModelProjection.ProjectionName, timeout, ct);

    /// <summary>
    /// Recomputes the whole read model from the log without Marten's daemon (<see cref="IEventStore.RebuildByFoldAsync{TDoc}"/>):
    /// each session's events up to Marten's high-water mark, read with plain SQL (type and data), folded with the Domain
    /// (<see cref="Evolve.Apply"/>), and the rows of the final state (<see cref="SvaRows.All"/>, the same rows the daemon's
    /// projection and verify use) written with one COPY in the transaction that sets the checkpoint. An event this version
    /// cannot read stops it with a <see cref="StoredEventException"/> naming the session and seq; nothing is written then.
    /// </summary>
    public static Task<FoldRebuildResult> RebuildAsync(IEventStore store, IProgress<long>? progress = null, CancellationToken ct = default) =>
        store.RebuildByFoldAsync<ReadModelRow>(SvaReadModelProjection.ProjectionName, session => new SessionFold(session), progress, ct);

    /// <summary>One session's fold: seqs must follow 1, 2, … without a gap; decode and apply errors name the seq.</summary>
    private sealed class SessionFold(string session) : ISessionFold<ReadModelRow>
    {
        private readonly SvaState state = new();

        public void Apply(long seq, string type, ReadOnlySpan<byte> data)
        {
            if (seq != state.Seq + 1) throw new StoredEventException(session, seq, $"expected seq {state.Seq + 1} (gap or reorder in the log)");
            var ev = EventCodec.Decode(session, seq, type, data);
            try { Evolve.Apply(state, ev); }
            catch (Exception ex) when (ex is not StoredEventException and not OperationCanceledException)
            {
                throw new StoredEventException(session, seq, $"{type} cannot be applied: {ex.Message}");
            }
        }

        public IEnumerable<ReadModelRow> Documents() => SvaRows.All(state).Select(r => ReadModelRow.From(session, r));
    }

    private static async IAsyncEnumerable<StoredEvent> Projected(IAsyncEnumerable<StoredEvent> events, long checkpoint,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var e in events.WithCancellation(ct))
        {
            if (e.Position > checkpoint) yield break;
            yield return e;
        }
    }

    public static List<RowDifference> Compare(IEnumerable<ReadModelRow> stored, IEnumerable<ReadModelRow> expected)
    {
        var s = stored.ToDictionary(r => (r.Table, r.Key));
        var e = expected.ToDictionary(r => (r.Table, r.Key));
        var diffs = new List<RowDifference>();
        foreach (var (k, row) in e)
            if (!s.TryGetValue(k, out var have)) diffs.Add(new(k.Table, k.Key, null, Show(row)));
            else if (!have.Values.SequenceEqual(row.Values)) diffs.Add(new(k.Table, k.Key, Show(have), Show(row)));
        foreach (var (k, row) in s)
            if (!e.ContainsKey(k)) diffs.Add(new(k.Table, k.Key, Show(row), null));
        return diffs.OrderBy(d => d.Table, StringComparer.Ordinal).ThenBy(d => d.Key, StringComparer.Ordinal).ToList();
    }

    private static string Show(ReadModelRow r) => $"{r.Table}[{r.Key}]({string.Join(", ", r.Values.Select(v => v ?? "null"))})";
}
