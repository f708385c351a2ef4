namespace Sva.EventStore;

// Provenance reads: the group (a call) each of many seqs belongs to, found and summarized by the server.
public sealed partial class MartenEventStore
{
    // For each wanted seq (one point look-up on (stream_id, version)): the event, then a backward index walk to the nearest
    // event that starts a group (its metadata has an object at startKey) or leaves it (another value at groupKey), then a
    // forward walk to the group's end, then the group's events' types and one field of their data. Only headers are read
    // for the walks; metadata is parsed by the server. Calls are a few events long, so each walk stops after a few rows.
    private const string GroupsSql = """
        SELECT w.s, e.type, e.data::text, e.m, g.version, g.m, x.types, x.fields
        FROM unnest($2::bigint[]) AS w(s)
        CROSS JOIN LATERAL (
            SELECT type, data, COALESCE(headers->>'meta', '{}') AS m FROM mt_events WHERE stream_id = $1 AND version = w.s) e
        CROSS JOIN LATERAL (SELECT e.m::json AS j) ej
        CROSS JOIN LATERAL (SELECT ej.j->>$4 AS key, COALESCE(json_typeof(ej.j->$3) = 'object', false) AS starts) k
        LEFT JOIN LATERAL (
            SELECT b.version, b.m, b.j->>$4 AS key FROM (
                SELECT version, m, m::json AS j FROM (
                    SELECT version, COALESCE(headers->>'meta', '{}') AS m FROM mt_events
                    WHERE NOT k.starts AND stream_id = $1 AND version < w.s ORDER BY version DESC) b0) b
            WHERE json_typeof(b.j->$3) = 'object' OR (b.j->>$4) IS DISTINCT FROM k.key
            LIMIT 1) s0 ON true
        CROSS JOIN LATERAL (
            SELECT CASE WHEN k.starts THEN w.s WHEN s0.key IS NOT DISTINCT FROM k.key THEN s0.version END AS version,
                   CASE WHEN k.starts THEN e.m WHEN s0.key IS NOT DISTINCT FROM k.key THEN s0.m END AS m) g
        LEFT JOIN LATERAL (
            SELECT a.version FROM (
                SELECT version, m::json AS j FROM (
                    SELECT version, COALESCE(headers->>'meta', '{}') AS m FROM mt_events
                    WHERE g.version IS NOT NULL AND stream_id = $1 AND version > g.version ORDER BY version) a0) a
            WHERE json_typeof(a.j->$3) = 'object' OR (a.j->>$4) IS DISTINCT FROM k.key
            LIMIT 1) n ON true
        LEFT JOIN LATERAL (
            SELECT array_agg(type ORDER BY version) AS types, array_agg(data->>$5 ORDER BY version) AS fields FROM mt_events
            WHERE g.version IS NOT NULL AND stream_id = $1 AND version >= g.version AND version < COALESCE(n.version, 9223372036854775807)) x ON true
        ORDER BY w.s
        """;

    public async Task<IReadOnlyList<GroupedEvent>?> ReadGroupsAsync(string session, IReadOnlyList<long> seqs, string startKey, string groupKey,
        string dataField, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        if (seqs.Count == 0) return [];
        return await RunAsync(async () =>
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            // Planned costs are those of whole-session scans (the LIMITs stop the walks after a few rows), which would make the
            // server JIT-compile the query: measured, ~1.3 s of compilation for ~0.1 s of execution. Off for this one transaction.
            await using var batch = new NpgsqlBatch(conn);
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('jit', 'off', true)"));
            var cmd = new NpgsqlBatchCommand(GroupsSql)
            {
                Parameters =
                {
                    Text(session),
                    new NpgsqlParameter<long[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = seqs.Distinct().ToArray() },
                    Text(startKey), Text(groupKey), Text(dataField),
                },
            };
            var list = new List<GroupedEvent>(seqs.Count);
            try
            {
                batch.BatchCommands.Add(cmd);
                await using var r = await batch.ExecuteReaderAsync(ct);
                await r.NextResultAsync(ct);
                while (await r.ReadAsync(ct))
                    list.Add(new GroupedEvent(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3),
                        r.IsDBNull(4) ? null : r.GetInt64(4), r.IsDBNull(5) ? null : r.GetString(5),
                        r.IsDBNull(6) ? [] : r.GetFieldValue<string[]>(6), r.IsDBNull(7) ? [] : r.GetFieldValue<string?[]>(7)));
            }
            // metadata or data the server cannot read as JSON (class 22: data exception): the caller reads the events itself
            catch (PostgresException pg) when (pg.SqlState.StartsWith("22", StringComparison.Ordinal)) { return null; }
            return (IReadOnlyList<GroupedEvent>?)list;
        }, ct);
    }
}
