namespace Sva.EventStore;

// Time search: the last seq at or before a time.
public sealed partial class MartenEventStore
{
    // ------------------------------------------------------------------ time

    public async Task<long> SeqAtTimeAsync(string session, DateTimeOffset time, CancellationToken ct = default)
    {
        var info = await GetSessionAsync(session, ct) ?? throw new SessionNotFoundException(session);
        if (info.Version == 0) return 0;
        return await RunAsync(async () =>
        {
            // Appends to one session are serialized by the version check, so timestamps never decrease along the seqs:
            // a binary search over the (stream, version) index.
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var cmd = new NpgsqlCommand("SELECT timestamp FROM mt_events WHERE stream_id = $1 AND version = $2", conn)
                { Parameters = { Text(session), Bigint(0) } };
            await cmd.PrepareAsync(ct);
            async Task<DateTimeOffset> At(long seq)
            {
                cmd.Parameters[1].Value = seq;
                return await cmd.ExecuteScalarAsync(ct) switch
                {
                    DateTimeOffset d => d,
                    DateTime dt => new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)),
                    _ => throw new InvalidOperationException($"session {session} has no seq {seq}"),
                };
            }
            if (await At(1) > time) return 0L;
            long lo = 1, hi = info.Version;
            if (await At(hi) <= time) return hi;
            while (hi - lo > 1)
            {
                var mid = lo + (hi - lo) / 2;
                if (await At(mid) <= time) lo = mid; else hi = mid;
            }
            return lo;
        }, ct);
    }
}
