namespace Sva.EventStore;

// Snapshots: caches bound to the chain by their digest. Rows of sva_snapshots (zstd of a versioned payload: SnapshotCodec), and the JSON documents of
// earlier versions (read, verified, deleted; never written). Reads are plain SQL (no DocumentStore).
public sealed partial class MartenEventStore
{
    // ------------------------------------------------------------------ snapshots

    public Task<LoadedSnapshot?> LoadSnapshotAsync(string session, long atOrBelowSeq, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync(async () =>
        {
            // Newest first, with the digest the log recorded at its seq, one row per round trip: the first that decodes
            // and whose digest the log vouches for wins (a forged newest one costs one extra read, not all of them).
            await using (var conn = await _dataSource.OpenConnectionAsync(ct))
            await using (var cmd = new NpgsqlCommand(
                $"""
                SELECT s.seq, s.encoding, s.bytes, e.headers->>'state' FROM public.{SnapshotTableFeature.TableName} s
                LEFT JOIN public.mt_events e ON e.stream_id = s.session AND e.version = s.seq
                WHERE s.session = $1 AND s.seq <= $2 ORDER BY s.seq DESC LIMIT 1
                """, conn) { Parameters = { Text(session), Bigint(atOrBelowSeq) } })
            {
                for (var tries = 0; tries < 8; tries++)
                {
                    long seq;
                    short encoding;
                    byte[]? payload;
                    string? recorded;
                    await using (var r = await cmd.ExecuteReaderAsync(ct))
                    {
                        if (!await r.ReadAsync(ct)) break;
                        seq = r.GetInt64(0);
                        encoding = r.GetInt16(1);
                        payload = SnapshotCodec.Decompress(encoding, r.GetFieldValue<byte[]>(2));
                        recorded = r.IsDBNull(3) ? null : r.GetString(3);
                    }
                    if (payload is not null && recorded is not null && recorded == SnapshotCodec.Digest(payload))
                        return new LoadedSnapshot(seq, encoding, payload);
                    cmd.Parameters[1].Value = seq - 1;
                }
            }
            return await LoadSnapshotDocAsync(session, atOrBelowSeq, ct);
        }, ct);
    }

    public Task<(long After, IReadOnlyList<EventData> Events)> ReadTailAfterSnapshotAsync(string session, long atSeq, int max, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync<(long, IReadOnlyList<EventData>)>(async () =>
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            // The newest snapshot's seq (a row, or a document of an earlier version when the session has one newer) by two
            // index-only look-ups, then the events after it: one statement, one round trip, no header extracted.
            var docs = await SnapshotDocTableExistsAsync(conn, ct)
                ? ", (SELECT max(d.seq) FROM public.mt_doc_snapshotdoc d WHERE d.session = $1 AND d.seq <= $2)"
                : "";
            await using var cmd = new NpgsqlCommand(
                $"""
                WITH a AS (SELECT GREATEST(0, (SELECT max(s.seq) FROM public.{SnapshotTableFeature.TableName} s WHERE s.session = $1 AND s.seq <= $2){docs}) AS after)
                SELECT a.after, e.version, e.type, e.data::text FROM a
                LEFT JOIN mt_events e ON e.stream_id = $1 AND e.version > a.after AND e.version <= LEAST($2, a.after + $3)
                ORDER BY e.version
                """, conn) { Parameters = { Text(session), Bigint(atSeq), Bigint(max) } };
            // Prepared: planning the look-ups took longer than running them (the plan is kept on the pooled connection).
            // Not MATERIALIZED: the inlined look-up keeps the row estimate small (materialized, the planner guessed 100k rows
            // and PostgreSQL's JIT compiled the query: 300 ms).
            await cmd.PrepareAsync(ct);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            long after = 0;
            var list = new List<EventData>();
            while (await r.ReadAsync(ct))
            {
                after = r.GetInt64(0);
                if (!r.IsDBNull(1)) list.Add(new EventData(session, r.GetInt64(1), r.GetString(2), r.GetString(3)));
            }
            return (after, list);
        }, ct);
    }

    /// <summary>A snapshot document of an earlier version (a JSON string in jsonb), trusted on the same terms. Plain SQL on
    /// Marten's document table: no DocumentStore is built for a read (README, "Command start").</summary>
    private async Task<LoadedSnapshot?> LoadSnapshotDocAsync(string session, long atOrBelowSeq, CancellationToken ct)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        if (!await SnapshotDocTableExistsAsync(conn, ct)) return null;
        // Only the seqs (with the digest the log recorded there) are listed; a document (large) is loaded one at a time, so a
        // forged newest one costs one extra load, not all of them.
        var candidates = new List<(long Seq, string? Recorded)>();
        await using (var list = new NpgsqlCommand(
            "SELECT s.seq, e.headers->>'state' FROM public.mt_doc_snapshotdoc s LEFT JOIN public.mt_events e ON e.stream_id = s.session AND e.version = s.seq " +
            "WHERE s.session = $1 AND s.seq <= $2 ORDER BY s.seq DESC LIMIT 8", conn) { Parameters = { Text(session), Bigint(atOrBelowSeq) } })
        await using (var r = await list.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) candidates.Add((r.GetInt64(0), r.IsDBNull(1) ? null : r.GetString(1)));
        foreach (var (seq, recorded) in candidates)
        {
            if (recorded is null) continue;
            await using var load = new NpgsqlCommand("SELECT data->>'json' FROM public.mt_doc_snapshotdoc WHERE id = $1", conn)
                { Parameters = { Text(SnapshotDoc.IdOf(session, seq)) } };
            if (await load.ExecuteScalarAsync(ct) is string json && recorded == Digest(json))
                return new LoadedSnapshot(seq, json); // JSON text, as encoding 1 holds it
        }
        return null;
    }

    /// <summary>Whether the document table of earlier snapshot versions exists (every database a writer set up has it).</summary>
    private static async Task<bool> SnapshotDocTableExistsAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT to_regclass('public.mt_doc_snapshotdoc') IS NOT NULL", conn);
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    /// <summary>Every snapshot of the session: (seq, stored bytes, its uncompressed payload when it decodes), rows and old documents.</summary>
    private async Task<List<(long Seq, long Bytes, byte[]? Payload)>> AllSnapshotsAsync(string session, bool withPayload, CancellationToken ct)
    {
        var list = new List<(long, long, byte[]?)>();
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using (var cmd = new NpgsqlCommand(
            $"SELECT seq, encoding, {(withPayload ? "bytes" : "NULL::bytea")}, octet_length(bytes) FROM public.{SnapshotTableFeature.TableName} WHERE session = $1 ORDER BY seq", conn)
            { Parameters = { Text(session) } })
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                list.Add((r.GetInt64(0), r.GetInt32(3), withPayload ? SnapshotCodec.Decompress(r.GetInt16(1), r.GetFieldValue<byte[]>(2)) : null));
        if (await SnapshotDocTableExistsAsync(conn, ct))
        {
            await using var docs = new NpgsqlCommand(
                $"SELECT seq, octet_length(data->>'json'), {(withPayload ? "data->>'json'" : "NULL::text")} FROM public.mt_doc_snapshotdoc WHERE session = $1 ORDER BY seq", conn)
                { Parameters = { Text(session) } };
            await using var r = await docs.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                list.Add((r.GetInt64(0), r.IsDBNull(1) ? 0 : r.GetInt32(1), withPayload && !r.IsDBNull(2) ? Encoding.UTF8.GetBytes(r.GetString(2)) : null));
        }
        list.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return list;
    }

    public Task<IReadOnlyList<(long Seq, long Bytes)>> ListSnapshotsAsync(string session, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync<IReadOnlyList<(long Seq, long Bytes)>>(async () =>
            (await AllSnapshotsAsync(session, withPayload: false, ct)).Select(s => (s.Seq, s.Bytes)).ToList(), ct);
    }

    public Task<int> DeleteSnapshotsAsync(string session, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync(async () =>
        {
            var n = (await ListSnapshotsAsync(session, ct)).Count;
            await using var s = _store.LightweightSession();
            s.DeleteWhere<SnapshotDoc>(x => x.Session == session);
            s.QueueSqlCommand($"DELETE FROM public.{SnapshotTableFeature.TableName} WHERE session = ?", session);
            await s.SaveChangesAsync(ct);
            return n;
        }, ct);
    }
}
