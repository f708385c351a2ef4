using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>A difference between the stored read model and the one recomputed from the log.</summary>
public sealed record RowDifference(string Table, string Key, string? Stored, string? Expected);

/// <summary>Rebuild and verification of the inline read model from the log.</summary>
public static class ReadModel
{
    /// <summary>The rows of a session's read model as stored (Marten documents).</summary>
    public static async Task<IReadOnlyList<ReadModelRow>> StoredRowsAsync(IEventStore store, string session, CancellationToken ct = default) =>
        await store.QueryAsync<ReadModelRow>(r => r.Session == session, ct);

    /// <summary>Compares the stored rows of a session with the rows of fold(log).</summary>
    public static async Task<List<RowDifference>> VerifySessionAsync(IEventStore store, string session, CancellationToken ct = default)
    {
        var state = await EventCodec.FoldAsync(store.ReadSessionAsync(session, ct: ct), ct: ct);
        return Compare(await StoredRowsAsync(store, session, ct), SvaRows.All(state).Select(r => ReadModelRow.From(session, r)));
    }

    /// <summary>Recomputes the whole read model from the log through Marten's daemon (rebuild of the inline projection).</summary>
    public static Task RebuildAllAsync(IEventStore store, TimeSpan timeout, CancellationToken ct = default) =>
        store.RebuildProjectionAsync(SvaReadModelProjection.ProjectionName, timeout, ct);

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
