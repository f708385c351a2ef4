namespace Sva.EventStore;

// Raw reads of a session's events, in pages.
public sealed partial class MartenEventStore
{
    // ------------------------------------------------------------------ read

    public async IAsyncEnumerable<StoredEvent> ReadSessionAsync(string session, long fromSeq = 1, long toSeq = long.MaxValue,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        ValidateSessionId(session);
        var next = Math.Max(fromSeq, 1);
        while (next <= toSeq)
        {
            var from = next;
            var page = await RunAsync(() => ReadPageAsync(session, from, toSeq, ct), ct);
            foreach (var e in page) yield return e;
            if (page.Count < PageSize || page[^1].Seq == long.MaxValue) yield break;
            next = page[^1].Seq + 1;
        }
    }

    /// <summary>Type and data only: no header is extracted or parsed (a fold's read; the full row costs ~3x per event).</summary>
    public async IAsyncEnumerable<EventData> ReadSessionDataAsync(string session, long fromSeq, long toSeq,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        ValidateSessionId(session);
        var next = Math.Max(fromSeq, 1);
        while (next <= toSeq)
        {
            var from = next;
            var page = await RunAsync(async () =>
            {
                await using var conn = await _dataSource.OpenConnectionAsync(ct);
                await using var cmd = new NpgsqlCommand(
                    "SELECT version, type, data::text FROM mt_events WHERE stream_id = $1 AND version >= $2 AND version <= $3 ORDER BY version LIMIT $4",
                    conn) { Parameters = { Text(session), Bigint(from), Bigint(toSeq), new NpgsqlParameter<int> { TypedValue = PageSize } } };
                await cmd.PrepareAsync(ct);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                var list = new List<EventData>();
                while (await r.ReadAsync(ct)) list.Add(new EventData(session, r.GetInt64(0), r.GetString(1), r.GetString(2)));
                return list;
            }, ct);
            foreach (var e in page) yield return e;
            if (page.Count < PageSize || page[^1].Seq == long.MaxValue) yield break;
            next = page[^1].Seq + 1;
        }
    }

    public async IAsyncEnumerable<StoredEvent> ReadSessionOfTypesAsync(string session, IReadOnlyCollection<string> types, long fromSeq, long toSeq,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        ValidateSessionId(session);
        var typeArray = types.ToArray();
        var next = Math.Max(fromSeq, 1);
        while (next <= toSeq)
        {
            var from = next;
            var page = await RunAsync(() => ReadPageAsync(session, from, toSeq, ct, typeArray), ct);
            foreach (var e in page) yield return e;
            if (page.Count < PageSize || page[^1].Seq == long.MaxValue) yield break;
            next = page[^1].Seq + 1;
        }
    }

    /// <summary>Several seq ranges in one query (provenance: the events around many seqs), in seq order (ranges should not overlap).</summary>
    public async IAsyncEnumerable<StoredEvent> ReadSessionRangesAsync(string session, IReadOnlyList<(long From, long To)> ranges,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        ValidateSessionId(session);
        if (ranges.Count == 0) yield break;
        var page = await RunAsync(async () =>
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var cmd = new NpgsqlCommand(
                // one index range scan per range: a LATERAL subquery kept apart (OFFSET 0), else the planner joins a
                // sequential scan of the session against the ranges (measured: 100x slower on a 30,000-event session)
                "SELECT e.seq_id, e.version, e.type, e.data, e.cmd, e.meta, e.hash, e.state, e.timestamp, e.chain, e.meta_json " +
                "FROM unnest($2::bigint[], $3::bigint[]) AS r(lo, hi) CROSS JOIN LATERAL (" +
                "SELECT seq_id, version, type, data::text AS data, " + ChainHeaders.CommandSql + " AS cmd, " + StringHeader("meta") + " AS meta, " +
                StringHeader("hash") + " AS hash, " + StringHeader("state") + " AS state, timestamp, " + ChainHeaders.ChainSql + " AS chain, " +
                ChainHeaders.MetaJsonSql + " AS meta_json FROM mt_events " +
                "WHERE stream_id = $1 AND version >= r.lo AND version <= r.hi ORDER BY version OFFSET 0) e " +
                "ORDER BY e.version",
                conn)
            {
                Parameters =
                {
                    Text(session),
                    new NpgsqlParameter<long[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = ranges.Select(r => r.From).ToArray() },
                    new NpgsqlParameter<long[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, TypedValue = ranges.Select(r => r.To).ToArray() },
                },
            };
            return await ReadRowsAsync(cmd, session, ct);
        }, ct);
        foreach (var e in page) yield return e;
    }

    private async Task<List<StoredEvent>> ReadPageAsync(string session, long from, long to, CancellationToken ct, string[]? types = null)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(
            // The header fields are taken out by PostgreSQL (->>): no JSON document is parsed here per event.
            "SELECT seq_id, version, type, data::text, " + ChainHeaders.CommandSql + ", " + StringHeader("meta") + ", " + StringHeader("hash") + ", " + StringHeader("state") + ", timestamp, " +
            ChainHeaders.ChainSql + ", " + ChainHeaders.MetaJsonSql + " " +
            "FROM mt_events WHERE stream_id = $1 AND version >= $2 AND version <= $3" +
            (types is null ? "" : " AND type = ANY($5)") + " ORDER BY version LIMIT $4",
            conn) { Parameters = { Text(session), Bigint(from), Bigint(to), new NpgsqlParameter<int> { TypedValue = PageSize } } };
        if (types is not null) cmd.Parameters.Add(new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = types });
        await cmd.PrepareAsync(ct);
        return await ReadRowsAsync(cmd, session, ct);
    }

    /// <summary>Rows of (seq_id, version, type, data, cmd, meta, hash, state, timestamp, chain, meta_json) as stored events of <paramref name="session"/>.</summary>
    private static async Task<List<StoredEvent>> ReadRowsAsync(NpgsqlCommand cmd, string session, CancellationToken ct)
    {
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<StoredEvent>();
        while (await r.ReadAsync(ct))
        {
            Guid? cmdId = !r.IsDBNull(4) && Guid.TryParse(r.GetString(4), out var g) ? g : null;
            // chain 1: the metadata is a string header; chain 2: a JSON value (read in its compact canonical form) or a string
            var chain = ChainHeaders.Chain(r.IsDBNull(9) ? null : r.GetString(9));
            var metaIsJson = chain >= 2 && !r.IsDBNull(10);
            var meta = metaIsJson ? CanonicalJson.FromJsonbText(r.GetString(10)) : r.IsDBNull(5) ? "{}" : r.GetString(5);
            byte[] hash = [];
            if (!r.IsDBNull(6))
            {
                try { hash = Convert.FromHexString(r.GetString(6)); }
                catch (FormatException) { hash = []; }
            }
            list.Add(new StoredEvent(r.GetInt64(0), session, r.GetInt64(1), r.GetString(2), r.GetString(3), meta, cmdId,
                r.GetFieldValue<DateTimeOffset>(8), hash, r.IsDBNull(7) ? null : r.GetString(7)) { Chain = chain, MetadataIsJson = metaIsJson });
        }
        return list;
    }

    /// <summary>A string header's value (null when missing or not a string), extracted by PostgreSQL.</summary>
    private static string StringHeader(string name) => $"CASE WHEN jsonb_typeof(headers->'{name}') = 'string' THEN headers->>'{name}' END";
}
