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
            // Newest first; the first whose digest the log vouches for wins. Only the seqs are listed; a snapshot's
            // document (large) is loaded one at a time, so a forged newest one costs one extra load, not all of them.
            await using var q = _store.QuerySession();
            var seqs = await q.Query<SnapshotDoc>().Where(x => x.Session == session && x.Seq <= atOrBelowSeq)
                .OrderByDescending(x => x.Seq).Select(x => x.Seq).Take(8).ToListAsync(ct);
            foreach (var seq in seqs)
            {
                var recordedTask = StateDigestAtAsync(session, seq, ct);
                var snap = await q.LoadAsync<SnapshotDoc>(SnapshotDoc.IdOf(session, seq), ct);
                if (snap is not null && await recordedTask is { } recorded && recorded == Digest(snap.Json))
                    return new LoadedSnapshot(snap.Seq, snap.Json);
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
