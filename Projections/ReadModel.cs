using Npgsql;
using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>A difference between the stored read model and the one recomputed from the log.</summary>
public sealed record RowDifference(string Table, string Key, string? Stored, string? Expected);

/// <summary>Rebuild and verification of the inline read model from the log.</summary>
public static class ReadModel
{
    /// <summary>Recomputes a session's rows from its events and replaces them in one transaction.</summary>
    public static async Task<int> RebuildSessionAsync(PgEventStore store, string session, CancellationToken ct = default)
    {
        var state = await EventCodec.FoldAsync(store.ReadSessionAsync(session, ct: ct), ct: ct);
        var rows = SvaRows.All(state).ToList();
        await using var conn = await store.DataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await RowWriter.WriteAsync(conn, session, rows, [], deleteAllFirst: true, ct);
        await tx.CommitAsync(ct);
        return rows.Count;
    }

    /// <summary>Compares the stored rows of a session with the rows of fold(log).</summary>
    public static async Task<List<RowDifference>> VerifySessionAsync(PgEventStore store, string session, CancellationToken ct = default)
    {
        var state = await EventCodec.FoldAsync(store.ReadSessionAsync(session, ct: ct), ct: ct);
        return Compare(await RowWriter.ReadAsync(store.DataSource, session, ct), SvaRows.All(state));
    }

    public static List<RowDifference> Compare(IEnumerable<Row> stored, IEnumerable<Row> expected)
    {
        var s = stored.ToDictionary(r => (r.Table, r.Key));
        var e = expected.ToDictionary(r => (r.Table, r.Key));
        var diffs = new List<RowDifference>();
        foreach (var (k, row) in e)
            if (!s.TryGetValue(k, out var have)) diffs.Add(new(k.Table, k.Key, null, row.ToString()));
            else if (!have.SameValues(row)) diffs.Add(new(k.Table, k.Key, have.ToString(), row.ToString()));
        foreach (var (k, row) in s)
            if (!e.ContainsKey(k)) diffs.Add(new(k.Table, k.Key, row.ToString(), null));
        return diffs.OrderBy(d => d.Table, StringComparer.Ordinal).ThenBy(d => d.Key, StringComparer.Ordinal).ToList();
    }
}
