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

    /// <summary>
    /// Recomputes the whole read model (all sessions) into fresh tables and swaps them in. The fold runs
    /// without blocking appends; only the catch-up of events appended meanwhile, the copy and the swap run
    /// under the store_position row lock. Returns (events folded, rows written).
    /// </summary>
    public static async Task<(long Events, long Rows)> RebuildAllAsync(PgEventStore store, CancellationToken ct = default)
    {
        var states = new Dictionary<string, SvaState>(StringComparer.Ordinal);
        long folded = 0;
        void Apply(StoredEvent e)
        {
            if (!states.TryGetValue(e.Session, out var s)) states[e.Session] = s = new SvaState();
            if (e.Seq != s.Seq + 1) throw new StoredEventException(e.Session, e.Seq, $"expected seq {s.Seq + 1}");
            Evolve.Apply(s, EventCodec.Decode(e));
            folded++;
        }
        await using (var conn = await store.DataSource.OpenConnectionAsync(ct))
        await using (var prep = new NpgsqlCommand("SELECT sva_read_model_prepare()", conn))
            await prep.ExecuteNonQueryAsync(ct);
        var head = await store.ReadHeadPositionAsync(ct);
        await foreach (var e in store.ReadAllAsync(1, head, ct)) Apply(e);

        await using var c = await store.DataSource.OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        long newHead;
        await using (var lk = new NpgsqlCommand("SELECT last FROM store_position WHERE id = 1 FOR UPDATE", c))
            newHead = (long)(await lk.ExecuteScalarAsync(ct))!;
        if (newHead > head)
        {
            await using var tail = new NpgsqlCommand("SELECT session, seq, type, data::text FROM events WHERE position > $1 AND position <= $2 ORDER BY position", c);
            tail.Parameters.Add(new NpgsqlParameter<long> { TypedValue = head });
            tail.Parameters.Add(new NpgsqlParameter<long> { TypedValue = newHead });
            var pending = new List<StoredEvent>();
            await using (var r = await tail.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct))
                    pending.Add(new StoredEvent(0, r.GetString(0), r.GetInt64(1), r.GetString(2), r.GetString(3), "{}", null, default, []));
            foreach (var e in pending) Apply(e);
        }
        long rows = 0;
        foreach (var t in SvaRows.Tables)
        {
            var cols = string.Join(", ", t.AllColumns.Prepend("session"));
            await using var copy = await c.BeginBinaryImportAsync($"COPY {t.Name}__rebuild ({cols}) FROM STDIN (FORMAT BINARY)", ct);
            foreach (var (session, state) in states)
                foreach (var row in SvaRows.All(state).Where(r => r.Table == t.Name))
                {
                    await copy.StartRowAsync(ct);
                    await copy.WriteAsync(session, NpgsqlTypes.NpgsqlDbType.Text, ct);
                    for (var i = 0; i < row.Values.Length; i++)
                    {
                        var v = row.Values[i];
                        if (v is null) await copy.WriteNullAsync(ct);
                        else switch (t.SqlTypes[i])
                        {
                            case "text": await copy.WriteAsync((string)v, NpgsqlTypes.NpgsqlDbType.Text, ct); break;
                            case "integer": await copy.WriteAsync((int)v, NpgsqlTypes.NpgsqlDbType.Integer, ct); break;
                            default: await copy.WriteAsync((bool)v, NpgsqlTypes.NpgsqlDbType.Boolean, ct); break;
                        }
                    }
                    rows++;
                }
            await copy.CompleteAsync(ct);
        }
        await using (var swap = new NpgsqlCommand("SELECT sva_read_model_swap()", c)) await swap.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return (folded, rows);
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
