namespace Sva.EventStore;

/// <summary>A session's fold for <see cref="IEventStore.RebuildByFoldAsync{TDoc}"/>: handed the session's events one by one
/// (seq 1, 2, … up to the rebuild's ceiling), then asked for the session's documents. It throws (naming the session and
/// seq) on an event it cannot read: the rebuild then writes nothing.</summary>
public interface ISessionFold<out TDoc> where TDoc : class
{
    /// <param name="seq">The event's seq (the stream version).</param>
    /// <param name="type">Its stored type name.</param>
    /// <param name="data">Its data as UTF-8 JSON (as PostgreSQL renders the jsonb).</param>
    void Apply(long seq, string type, ReadOnlySpan<byte> data);
    IEnumerable<TDoc> Documents();
}

/// <summary>What a fold rebuild did: the checkpoint it set (every event at or below it is in the documents), the head
/// (highest committed position) when it started, and how much it read and wrote.</summary>
public sealed record FoldRebuildResult(long Checkpoint, long Head, long Sessions, long Events, long Documents)
{
    /// <summary>Where the time went: Marten's high-water detection, the read and fold of every session, the write.</summary>
    public TimeSpan CeilingTime { get; init; }
    public TimeSpan FoldTime { get; init; }
    public TimeSpan WriteTime { get; init; }
}

// A rebuild of one projection that does not go through Marten's daemon: every session is read with plain SQL (type and
// data only) up to Marten's own high-water mark, folded by the caller, and its final documents replace the old ones with
// one COPY, in one transaction with the projection's checkpoint.
public sealed partial class MartenEventStore
{
    public Task<FoldRebuildResult> RebuildByFoldAsync<TDoc>(string projection, Func<string, ISessionFold<TDoc>> fold,
        IProgress<long>? progress = null, CancellationToken ct = default) where TDoc : class
    {
        if (_readOnly) throw new InvalidOperationException("this store reads only: rebuild with a writer");
        var adapter = _adapters.SingleOrDefault(a => a.Inner.Name == projection)
            ?? throw new ArgumentException($"no projection '{projection}'", nameof(projection));
        if (adapter.Inner.DocumentTypes is not [var only] || only != typeof(TDoc))
            throw new ArgumentException($"{projection} does not write {typeof(TDoc).Name} documents only: rebuild it with Marten's daemon", nameof(projection));
        return RunAsync(async () =>
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            // 1. The ceiling: Marten's high-water mark, as its daemon computes it (see SafeCeilingAsync).
            var (ceiling, head) = await SafeCeilingAsync(ct);

            var ceilingTime = sw.Elapsed;
            // 2. Every session's events up to the ceiling, folded (nothing is written yet). One task reads (Npgsql), this one
            // folds: the two overlap on two cores (the read is about half of the client's work per event).
            var docs = new List<TDoc>();
            long sessions = 0, events = 0;
            var batches = System.Threading.Channels.Channel.CreateBounded<FoldBatch>(new System.Threading.Channels.BoundedChannelOptions(8)
                { SingleReader = true, SingleWriter = true });
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var reading = Task.Run(() => ReadForFoldAsync(ceiling, batches.Writer, stop.Token), stop.Token);
            try
            {
                ISessionFold<TDoc>? f = null;
                var any = false;
                await foreach (var b in batches.Reader.ReadAllAsync(stop.Token))
                {
                    if (b.Count > 0)
                    {
                        f ??= fold(b.Session);
                        for (var i = 0; i < b.Count; i++) f.Apply(b.Seqs[i], b.Types[i], b.Data[i]);
                        events += b.Count;
                        any = true;
                        progress?.Report(events);
                    }
                    if (!b.EndsSession) continue;
                    if (any)
                    {
                        sessions++;
                        docs.AddRange((f ?? fold(b.Session)).Documents());
                    }
                    f = null;
                    any = false;
                }
                await reading;
            }
            catch
            {
                await stop.CancelAsync();
                try { await reading; } catch { /* the fold's own error is the one to report */ }
                throw;
            }
            var foldTime = sw.Elapsed - ceilingTime;
            // 3. One transaction: the checkpoint row first (its row lock keeps a daemon's page of this projection out until we
            // commit; such a page then fails Marten's progression check and is redone from our checkpoint), the old documents
            // deleted, the new ones copied in.
            await WriteFoldedAsync(projection, docs, ceiling, ct);
            return new FoldRebuildResult(ceiling, head, sessions, events, docs.Count)
            {
                CeilingTime = ceilingTime, FoldTime = foldTime, WriteTime = sw.Elapsed - ceilingTime - foldTime,
            };
        }, ct);
    }

    /// <summary>A run of one session's events as read (a session ends with a batch whose <see cref="EndsSession"/> is set).</summary>
    private sealed class FoldBatch(string session, int capacity)
    {
        public string Session { get; } = session;
        public int Count;
        public bool EndsSession;
        public readonly long[] Seqs = new long[capacity];
        public readonly string[] Types = new string[capacity];
        public readonly byte[][] Data = new byte[capacity][];
    }

    private const int FoldBatchSize = 1024;

    /// <summary>Every session's events with <c>seq_id</c> at or below <paramref name="ceiling"/>, in seq order, session by session
    /// (one query per session on the (stream, version) index; the data as jsonb's UTF-8 text).</summary>
    private async Task ReadForFoldAsync(long ceiling, System.Threading.Channels.ChannelWriter<FoldBatch> output, CancellationToken ct)
    {
        try
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            var ids = new List<string>();
            await using (var list = new NpgsqlCommand("SELECT id FROM mt_streams WHERE id <> 'mt_tombstone' ORDER BY id", conn))
            await using (var r = await list.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct)) ids.Add(r.GetString(0));
            await using var read = new NpgsqlCommand(
                // Archived events are left out, as Marten's daemon leaves them out of an async projection (sva archives none).
                "SELECT version, type, data FROM mt_events WHERE stream_id = $1 AND seq_id <= $2 AND is_archived = false ORDER BY version", conn)
                { Parameters = { Text(""), Bigint(ceiling) } };
            await read.PrepareAsync(ct);
            var types = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var session in ids)
            {
                read.Parameters[0].Value = session;
                var batch = new FoldBatch(session, FoldBatchSize);
                await using (var r = await read.ExecuteReaderAsync(ct))
                    while (await r.ReadAsync(ct))
                    {
                        if (batch.Count == FoldBatchSize)
                        {
                            await output.WriteAsync(batch, ct);
                            batch = new FoldBatch(session, FoldBatchSize);
                        }
                        batch.Seqs[batch.Count] = r.GetInt64(0);
                        var type = r.GetString(1);
                        batch.Types[batch.Count] = types.TryGetValue(type, out var known) ? known : types[type] = type;
                        batch.Data[batch.Count] = r.GetFieldValue<byte[]>(2);
                        batch.Count++;
                    }
                batch.EndsSession = true;
                await output.WriteAsync(batch, ct);
            }
            output.Complete();
        }
        catch (Exception ex)
        {
            output.TryComplete(ex);
            throw;
        }
    }

    /// <summary>
    /// Marten's own safe ceiling: the high-water mark its async daemon computes and projects up to. Marten's detector
    /// (run here by the daemon's <c>StartHighWaterDetectionAsync</c>, the normal detection its polling loop runs) starts
    /// from the mark it persisted before (<c>mt_event_progression</c> row <c>HighWaterMark</c>) and walks the committed
    /// <c>seq_id</c>s above it, in one statement (one snapshot), stopping before the first gap: a sequence number that was
    /// taken but is not visible is either an append still in flight (it may commit later, with that lower number) or a
    /// rolled-back one. So every position at or below the mark is committed (or was proven dead by Marten's stale-gap logic,
    /// which only then moves a persisted mark past it), and nothing that commits later can land at or below it. Folding
    /// only events with <c>seq_id</c> at or below the mark and setting the checkpoint there can therefore never pass an
    /// uncommitted event: what commits later is above the checkpoint, and the daemon projects it from there. A gap above
    /// the mark leaves the events after it to the daemon (<see cref="FoldRebuildResult.Head"/> says how far the log goes);
    /// Marten's daemon skips a rolled-back gap once it has proven no live transaction can fill it.
    /// </summary>
    private async Task<(long Ceiling, long Head)> SafeCeilingAsync(CancellationToken ct)
    {
        using var built = await _store.BuildProjectionDaemonAsync();
        if (built is not Marten.Events.Daemon.ProjectionDaemon daemon)
            throw new InvalidOperationException($"Marten's daemon is a {built.GetType().FullName}: its high-water detection cannot be run");
        await daemon.StartHighWaterDetectionAsync();
        var mark = daemon.HighWaterMark();
        await daemon.PauseHighWaterAgentAsync();
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT coalesce(max(seq_id), 0) FROM mt_events", conn);
        var head = (long)(await cmd.ExecuteScalarAsync(ct))!;
        return (Math.Min(mark, head), head);
    }

    private async Task WriteFoldedAsync<TDoc>(string projection, List<TDoc> docs, long checkpoint, CancellationToken ct) where TDoc : class
    {
        var table = $"public.mt_doc_{typeof(TDoc).Name.ToLowerInvariant()}";
        var idOf = typeof(TDoc).GetProperty("Id")?.GetMethod ?? throw new ArgumentException($"{typeof(TDoc).Name} has no Id");
        var sessionOf = typeof(TDoc).GetProperty("Session")?.GetMethod ?? throw new ArgumentException($"{typeof(TDoc).Name} has no Session");
        var serializer = _serializer;
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var cp = new NpgsqlCommand(
            """
            INSERT INTO public.mt_event_progression (name, last_seq_id, last_updated) VALUES ($1, $2, transaction_timestamp())
            ON CONFLICT (name) DO UPDATE SET last_seq_id = excluded.last_seq_id, last_updated = excluded.last_updated
            """, conn, tx) { Parameters = { Text(projection + ":All"), Bigint(checkpoint) } })
            await cp.ExecuteNonQueryAsync(ct);
        await using (var del = new NpgsqlCommand($"DELETE FROM {table}", conn, tx))
            await del.ExecuteNonQueryAsync(ct);
        var type = typeof(TDoc).FullName!;
        await using (var copy = await conn.BeginBinaryImportAsync(
            $"COPY {table} (id, data, mt_version, mt_dotnet_type, session) FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var d in docs)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync((string)idOf.Invoke(d, null)!, NpgsqlDbType.Varchar, ct);
                await copy.WriteAsync(serializer.ToJson(d), NpgsqlDbType.Jsonb, ct);
                await copy.WriteAsync(Guid.CreateVersion7(), NpgsqlDbType.Uuid, ct);
                await copy.WriteAsync(type, NpgsqlDbType.Varchar, ct);
                await copy.WriteAsync((string)sessionOf.Invoke(d, null)!, NpgsqlDbType.Varchar, ct);
            }
            await copy.CompleteAsync(ct);
        }
        await tx.CommitAsync(ct);
    }
}
