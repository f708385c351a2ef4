using System.Collections.Concurrent;
using System.Linq.Expressions;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using JasperFx;
using JasperFx.Events;
using JasperFx.Events.Daemon;
using JasperFx.Events.Projections;
using Marten;
using Marten.Exceptions;
using Npgsql;
using NpgsqlTypes;
using Weasel.Core;

namespace Sva.EventStore;

// Snapshots: caches bound to the chain by their digest.
public sealed partial class MartenEventStore
{
    // ------------------------------------------------------------------ snapshots

    public Task<LoadedSnapshot?> LoadSnapshotAsync(string session, long atOrBelowSeq, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync(async () =>
        {
            // Newest first; the first whose digest the log vouches for wins. Only the seqs (with the digest the log recorded
            // there) are listed; a snapshot's document (large) is loaded one at a time, so a forged newest one costs one extra
            // load, not all of them. Plain SQL on Marten's document table: no DocumentStore is built for a read.
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            var candidates = new List<(long Seq, string? Recorded)>();
            await using (var list = new NpgsqlCommand(
                "SELECT s.seq, e.headers->>'state' FROM mt_doc_snapshotdoc s LEFT JOIN mt_events e ON e.stream_id = s.session AND e.version = s.seq " +
                "WHERE s.session = $1 AND s.seq <= $2 ORDER BY s.seq DESC LIMIT 8", conn) { Parameters = { Text(session), Bigint(atOrBelowSeq) } })
            await using (var r = await list.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct)) candidates.Add((r.GetInt64(0), r.IsDBNull(1) ? null : r.GetString(1)));
            foreach (var (seq, recorded) in candidates)
            {
                if (recorded is null) continue;
                await using var load = new NpgsqlCommand("SELECT data->>'json' FROM mt_doc_snapshotdoc WHERE id = $1", conn)
                    { Parameters = { Text(SnapshotDoc.IdOf(session, seq)) } };
                if (await load.ExecuteScalarAsync(ct) is string json && recorded == Digest(json))
                    return new LoadedSnapshot(seq, json);
            }
            return null;
        }, ct);
    }

    private async Task<string?> StateDigestAtAsync(string session, long seq, CancellationToken ct)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT headers->>'state' FROM mt_events WHERE stream_id = $1 AND version = $2", conn)
            { Parameters = { Text(session), Bigint(seq) } };
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    public Task<IReadOnlyList<(long Seq, long Bytes)>> ListSnapshotsAsync(string session, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync<IReadOnlyList<(long Seq, long Bytes)>>(async () =>
        {
            await using var q = _store.QuerySession();
            var docs = await q.Query<SnapshotDoc>().Where(x => x.Session == session).OrderBy(x => x.Seq).ToListAsync(ct);
            return docs.Select(d => (d.Seq, (long)Encoding.UTF8.GetByteCount(d.Json))).ToList();
        }, ct);
    }

    public Task<int> DeleteSnapshotsAsync(string session, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync(async () =>
        {
            var n = (await ListSnapshotsAsync(session, ct)).Count;
            await using var s = _store.LightweightSession();
            s.DeleteWhere<SnapshotDoc>(x => x.Session == session);
            await s.SaveChangesAsync(ct);
            return n;
        }, ct);
    }
}
