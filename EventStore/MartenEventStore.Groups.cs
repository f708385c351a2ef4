namespace Sva.EventStore;

// Provenance reads: the group (a call) each of many seqs belongs to, found and summarized by the server.
public sealed partial class MartenEventStore
{
    // For each wanted seq (one point look-up on (stream_id, version)): the event; then its group's first event: itself when its
    // metadata has an object at startKey; by a second point look-up when it names its distance to it (a number n at offsetKey:
    // seq - n, used only if that event starts a group with the same groupKey value); else a backward index walk to the nearest
    // event that starts a group (an object at startKey) or leaves it (another value at groupKey). Then, unless the first event's
    // metadata has summaryKey (the writer put there what the caller needs of the group), a forward walk to the group's end and
    // the group's events' types and one field of their data. Metadata is read with jsonb operators where it is a JSON value
    // (chain 2) and parsed only where it is a string (chain 1), once per row: OFFSET 0 keeps the planner from pulling a subquery
    // up, which would evaluate its metadata expression again at every use (measured: ~1.6x the server time). Calls are a few
    // events long, so each walk stops after a few rows.
    private const string MetaOf = "CASE WHEN jsonb_typeof(headers->'meta') = 'string' THEN (headers->>'meta')::jsonb ELSE COALESCE(headers->'meta', '{}') END";

    private const string GroupsSql = $"""
        SELECT w.s, e.type, e.data::text, e.m::text, g.version, g.m::text, x.types, x.fields
        FROM unnest($2::bigint[]) AS w(s)
        CROSS JOIN LATERAL (
            SELECT type, data, m, COALESCE(jsonb_typeof(m->$3) = 'object', false) AS starts, m->>$4 AS key,
                   CASE WHEN jsonb_typeof(m->$6) = 'number' THEN (m->>$6)::bigint END AS off FROM (
                SELECT type, data, {MetaOf} AS m FROM mt_events WHERE stream_id = $1 AND version = w.s OFFSET 0) e0 OFFSET 0) e
        LEFT JOIN LATERAL (
            SELECT version, m FROM (
                SELECT version, {MetaOf} AS m FROM mt_events WHERE NOT e.starts AND e.off IS NOT NULL AND stream_id = $1 AND version = w.s - e.off OFFSET 0) o0
            WHERE jsonb_typeof(m->$3) = 'object' AND (m->>$4) IS NOT DISTINCT FROM e.key) o ON true
        LEFT JOIN LATERAL (
            SELECT version, m, m->>$4 AS key FROM (
                SELECT version, {MetaOf} AS m FROM mt_events WHERE NOT e.starts AND e.off IS NULL AND stream_id = $1 AND version < w.s ORDER BY version DESC OFFSET 0) b0
            WHERE jsonb_typeof(m->$3) = 'object' OR (m->>$4) IS DISTINCT FROM e.key
            LIMIT 1) s0 ON true
        CROSS JOIN LATERAL (
            SELECT CASE WHEN e.starts THEN w.s WHEN e.off IS NOT NULL THEN o.version WHEN s0.key IS NOT DISTINCT FROM e.key THEN s0.version END AS version,
                   CASE WHEN e.starts THEN e.m WHEN e.off IS NOT NULL THEN o.m WHEN s0.key IS NOT DISTINCT FROM e.key THEN s0.m END AS m) g0
        CROSS JOIN LATERAL (SELECT g0.version, g0.m, COALESCE(jsonb_exists(g0.m, $7), false) AS summarized) g
        LEFT JOIN LATERAL (
            SELECT version FROM (
                SELECT version, {MetaOf} AS m FROM mt_events WHERE g.version IS NOT NULL AND NOT g.summarized AND stream_id = $1 AND version > g.version ORDER BY version OFFSET 0) a0
            WHERE jsonb_typeof(m->$3) = 'object' OR (m->>$4) IS DISTINCT FROM e.key
            LIMIT 1) n ON true
        LEFT JOIN LATERAL (
            SELECT array_agg(type ORDER BY version) AS types, array_agg(data->>$5 ORDER BY version) AS fields FROM mt_events
            WHERE g.version IS NOT NULL AND NOT g.summarized AND stream_id = $1 AND version >= g.version
              AND version < COALESCE(n.version, 9223372036854775807)) x ON true
        ORDER BY w.s
        """;

    public async Task<IReadOnlyList<GroupedEvent>?> ReadGroupsAsync(string session, IReadOnlyList<long> seqs, string startKey, string groupKey,
        string dataField, string? offsetKey = null, string? summaryKey = null, CancellationToken ct = default)
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
                    Text(startKey), Text(groupKey), Text(dataField), NullableText(offsetKey), NullableText(summaryKey),
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

    private static NpgsqlParameter NullableText(string? v) => v is null
        ? new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = DBNull.Value }
        : Text(v);
}
