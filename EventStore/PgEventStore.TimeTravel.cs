namespace Sva.EventStore;

/// <summary>
/// Time-travel support (issue 5): the snapshot cache's maintenance and listing, and resolving a wall-clock
/// time to a seq. Kept apart from the append/read core; every statement is parameterized and read-only
/// except <see cref="DeleteSnapshotsAsync"/>, which only touches the snapshot cache.
/// </summary>
public sealed partial class PgEventStore
{
    private const string SqlListSnapshots = "SELECT seq, pg_column_size(data) FROM snapshots WHERE session = $1 ORDER BY seq";
    private const string SqlNearestSnapshotSeq = "SELECT max(seq) FROM snapshots WHERE session = $1 AND seq <= $2";
    private const string SqlDeleteSnapshots = "DELETE FROM snapshots WHERE session = $1";
    private const string SqlRecordedAtOf = "SELECT recorded_at FROM events WHERE session = $1 AND seq = $2";

    /// <summary>The seq of the snapshot <see cref="LoadSnapshotAsync"/> would load for <paramref name="atOrBelowSeq"/> (an index-only
    /// look-up: lets a caller fetch the snapshot and the events after it at the same time), or null.</summary>
    public Task<long?> NearestSnapshotSeqAsync(string session, long atOrBelowSeq, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlNearestSnapshotSeq, Text(session), Bigint(atOrBelowSeq));
            return await cmd.ExecuteScalarAsync(ct) is long l ? l : (long?)null;
        }, ct);
    }

    /// <summary>The seqs of a session's snapshots (ascending) with the size of each (bytes stored, after PostgreSQL's compression).</summary>
    public Task<IReadOnlyList<(long Seq, long Bytes)>> ListSnapshotsAsync(string session, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync<IReadOnlyList<(long Seq, long Bytes)>>(async conn =>
        {
            await using var cmd = Command(conn, SqlListSnapshots, Text(session));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var list = new List<(long, long)>();
            while (await r.ReadAsync(ct)) list.Add((r.GetInt64(0), r.IsDBNull(1) ? 0 : r.GetInt32(1)));
            return list;
        }, ct);
    }

    /// <summary>Deletes a session's snapshots (they are a cache: no answer changes, only speed). Returns how many.</summary>
    public Task<int> DeleteSnapshotsAsync(string session, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlDeleteSnapshots, Text(session));
            return await cmd.ExecuteNonQueryAsync(ct);
        }, ct);
    }

    /// <summary>
    /// The last seq of <paramref name="session"/> whose <c>recorded_at</c> is at or before <paramref name="time"/>
    /// (0 when the session's first event is later). <c>recorded_at</c> is the append transaction's start time; appends
    /// to one session are serialized by the version check, so it never decreases along the seqs and a binary search
    /// over the (session, seq) index finds the answer in about log2(version) point reads on one connection.
    /// </summary>
    public async Task<long> SeqAtTimeAsync(string session, DateTimeOffset time, CancellationToken ct = default)
    {
        var info = await GetSessionAsync(session, ct) ?? throw new SessionNotFoundException(session);
        if (info.Version == 0) return 0;
        return await RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlRecordedAtOf, Text(session), Bigint(0));
            await cmd.PrepareAsync(ct);
            async Task<DateTimeOffset> At(long seq)
            {
                cmd.Parameters[1].Value = seq;
                return await cmd.ExecuteScalarAsync(ct) is DateTime dt ? new DateTimeOffset(dt, TimeSpan.Zero)
                    : throw new InvalidOperationException($"session {session} has no seq {seq}");
            }
            if (await At(1) > time) return 0L;
            long lo = 1, hi = info.Version; // invariant: recorded_at(lo) <= time
            if (await At(hi) <= time) return hi;
            while (hi - lo > 1)            // invariant: recorded_at(hi) > time
            {
                var mid = lo + (hi - lo) / 2;
                if (await At(mid) <= time) lo = mid; else hi = mid;
            }
            return lo;
        }, ct);
    }
}
