using System.Collections.Concurrent;
using Npgsql;
using NpgsqlTypes;

namespace Sva.Projections;

/// <summary>Writes row upserts and deletes for one session in one round trip (NpgsqlBatch, unnest arrays).</summary>
public static class RowWriter
{
    private static readonly ConcurrentDictionary<string, (string Upsert, string Delete, string DeleteAll, string Select)> sql = new();

    private static (string Upsert, string Delete, string DeleteAll, string Select) Sql(TableDef t) => sql.GetOrAdd(t.Name, _ =>
    {
        var cols = t.AllColumns.ToArray();
        var unnest = string.Join(", ", cols.Select((c, i) => $"${i + 2}::{t.SqlTypes[i]}[]"));
        var keys = string.Join(", ", t.KeyColumns);
        var set = string.Join(", ", t.ValueColumns.Select(c => $"{c} = EXCLUDED.{c}"));
        var keyUnnest = string.Join(", ", t.KeyColumns.Select((c, i) => $"${i + 2}::{t.SqlTypes[i]}[]"));
        return (
            $"INSERT INTO {t.Name} (session, {string.Join(", ", cols)}) SELECT $1, * FROM unnest({unnest}) ON CONFLICT (session, {keys}) DO UPDATE SET {set}",
            $"DELETE FROM {t.Name} WHERE session = $1 AND ({keys}) IN (SELECT * FROM unnest({keyUnnest}))",
            $"DELETE FROM {t.Name} WHERE session = $1",
            $"SELECT {string.Join(", ", cols)} FROM {t.Name} WHERE session = $1");
    });

    /// <summary>Upserts <paramref name="upserts"/> and deletes the rows at <paramref name="deletes"/> (table, key values).</summary>
    public static async Task WriteAsync(NpgsqlConnection conn, string session, IReadOnlyList<Row> upserts,
        IReadOnlyList<(string Table, object?[] KeyValues)> deletes, bool deleteAllFirst, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(conn);
        foreach (var t in SvaRows.Tables)
        {
            var (upsertSql, deleteSql, deleteAllSql, _) = Sql(t);
            if (deleteAllFirst)
            {
                var cmd = new NpgsqlBatchCommand(deleteAllSql);
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = session });
                batch.BatchCommands.Add(cmd);
            }
            var dels = deletes.Where(d => d.Table == t.Name).ToList();
            if (dels.Count > 0)
            {
                var cmd = new NpgsqlBatchCommand(deleteSql);
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = session });
                for (var k = 0; k < t.KeyColumns.Length; k++)
                    cmd.Parameters.Add(ArrayParam(t.SqlTypes[k], dels.Select(d => d.KeyValues[k])));
                batch.BatchCommands.Add(cmd);
            }
            var ups = upserts.Where(r => r.Table == t.Name).ToList();
            if (ups.Count > 0)
            {
                var cmd = new NpgsqlBatchCommand(upsertSql);
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = session });
                var ncols = t.KeyColumns.Length + t.ValueColumns.Length;
                for (var c = 0; c < ncols; c++)
                    cmd.Parameters.Add(ArrayParam(t.SqlTypes[c], ups.Select(r => r.Values[c])));
                batch.BatchCommands.Add(cmd);
            }
        }
        if (batch.BatchCommands.Count > 0) await batch.ExecuteNonQueryAsync(ct);
    }

    private static NpgsqlParameter ArrayParam(string sqlType, IEnumerable<object?> values) => sqlType switch
    {
        "text" => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = values.Select(v => (string?)v).ToArray() },
        "integer" => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer, Value = values.Select(v => (int?)v).ToArray() },
        "boolean" => new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Boolean, Value = values.Select(v => (bool?)v).ToArray() },
        _ => throw new ArgumentException($"no array mapping for {sqlType}"),
    };

    /// <summary>Every row the tables hold for a session, in the same shape <see cref="SvaRows"/> produces.</summary>
    public static async Task<List<Row>> ReadAsync(NpgsqlDataSource ds, string session, CancellationToken ct)
    {
        var rows = new List<Row>();
        await using var conn = await ds.OpenConnectionAsync(ct);
        foreach (var t in SvaRows.Tables)
        {
            await using var cmd = new NpgsqlCommand(Sql(t).Select, conn);
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = session });
            await using var rd = await cmd.ExecuteReaderAsync(ct);
            while (await rd.ReadAsync(ct))
            {
                var values = new object?[rd.FieldCount];
                for (var i = 0; i < values.Length; i++) values[i] = rd.IsDBNull(i) ? null : rd.GetValue(i);
                rows.Add(new Row(t.Name, KeyOf(t, values), values));
            }
        }
        return rows;
    }

    public static string KeyOf(TableDef t, object?[] values) =>
        string.Join("/", Enumerable.Range(0, t.KeyColumns.Length).Select(i => Convert.ToString(values[i], System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Key values of a (table, key) pair as <see cref="SvaRows.Touched"/> spells it.</summary>
    public static object?[] KeyValues(string table, string key) => table == "proj_pasid_table"
        ? [key[..key.LastIndexOf('/')], int.Parse(key[(key.LastIndexOf('/') + 1)..], System.Globalization.CultureInfo.InvariantCulture)]
        : [key];
}
