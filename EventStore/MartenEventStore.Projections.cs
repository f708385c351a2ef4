namespace Sva.EventStore;

// Projection documents, status, and the adapter of IDocumentProjection to Marten.
public sealed partial class MartenEventStore
{
    // ------------------------------------------------------------------ projections

    public Task<IReadOnlyList<T>> QueryAsync<T>(Expression<Func<T, bool>> where, CancellationToken ct = default) where T : class =>
        RunAsync<IReadOnlyList<T>>(async () =>
        {
            await using var q = _store.QuerySession();
            return await q.Query<T>().Where(where).ToListAsync(ct);
        }, ct);

    public Task<(IReadOnlyList<ProjectionProgress> Projections, long Head)> ProjectionStatusAsync(CancellationToken ct = default) =>
        RunAsync<(IReadOnlyList<ProjectionProgress>, long)>(async () =>
        {
            var stats = await _store.Advanced.FetchEventStoreStatistics(token: ct);
            var progress = await _store.Advanced.AllProjectionProgress(token: ct);
            var list = new List<ProjectionProgress>();
            foreach (var p in _adapters)
            {
                var name = p.Inner.Name;
                var shard = progress.FirstOrDefault(s => s.ShardName.StartsWith(name + ":", StringComparison.Ordinal) || s.ShardName == name);
                list.Add(new ProjectionProgress(name, "async", shard?.Sequence ?? 0));
            }
            return (list, stats.EventSequenceNumber);
        }, ct);

    public Task<(long Checkpoint, IReadOnlyList<string> Documents)?> ProjectionDocumentsAsync(string projection, Type documentType, string session,
        CancellationToken ct = default)
    {
        ValidateSessionId(session);
        if (!_adapters.Any(a => a.Inner.Name == projection && a.Inner.DocumentTypes.Contains(documentType)))
            throw new ArgumentException($"{projection} writes no {documentType.Name} documents", nameof(documentType));
        var table = $"public.mt_doc_{documentType.Name.ToLowerInvariant()}";
        return RunAsync<(long, IReadOnlyList<string>)?>(async () =>
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using (var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL AND to_regclass('public.mt_event_progression') IS NOT NULL", conn)
                { Parameters = { Text(table) } })
                if (await exists.ExecuteScalarAsync(ct) is not true) return null;
            // The checkpoint first: the documents read after it hold at least every event up to it (the daemon commits them together).
            long checkpoint;
            await using (var cp = new NpgsqlCommand("SELECT max(last_seq_id) FROM public.mt_event_progression WHERE name = $1 OR name LIKE $2", conn)
                { Parameters = { Text(projection), Text(projection + ":%") } })
            {
                if (await cp.ExecuteScalarAsync(ct) is not long l) return null;
                checkpoint = l;
            }
            var docs = new List<string>();
            await using (var q = new NpgsqlCommand($"SELECT data::text FROM {table} WHERE session = $1", conn) { Parameters = { Text(session) } })
            await using (var r = await q.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct)) docs.Add(r.GetString(0));
            return (checkpoint, docs);
        }, ct);
    }

    public Task<long?> FirstSeqAfterPositionAsync(string session, long position, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync<long?>(async () =>
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            // Walks the global positions above the checkpoint (the lag), not the session's events below it.
            await using var cmd = new NpgsqlCommand(
                "SELECT version FROM mt_events WHERE seq_id > $2 AND stream_id = $1 ORDER BY seq_id LIMIT 1", conn)
                { Parameters = { Text(session), Bigint(position) } };
            return await cmd.ExecuteScalarAsync(ct) is long v ? v : null;
        }, ct);
    }

    /// <summary>Adapts an <see cref="IDocumentProjection"/> to Marten's projection contract.</summary>
    private sealed class MartenProjection(IDocumentProjection inner) : Marten.Events.Projections.IProjection
    {
        private const string TombstoneStream = "mt_tombstone";
        public IDocumentProjection Inner { get; } = inner;
        public MartenEventStore? Reader { get; set; }

        public async Task ApplyAsync(IDocumentOperations operations, IReadOnlyList<IEvent> events, CancellationToken cancellation)
        {
            var t0 = AppendProfile.Now();
            var list = new List<ProjectedEvent>(events.Count);
            foreach (var e in events)
            {
                // Marten fills the sequence numbers of failed appends with tombstone events (stream mt_tombstone): they are
                // its bookkeeping, not the log's; every other event reaches the projection.
                if (e.Data is Tombstone || e.StreamKey == TombstoneStream) continue;
                var meta = e.Headers is { } hs && hs.TryGetValue("meta", out var m) ? m : null;
                list.Add(ProjectedEvent.FromHeader(e.Id, e.StreamKey ?? "", e.Version, e.Sequence, e.EventTypeName, e.Data, meta, e.Timestamp));
            }
            var reader = Reader ?? throw new InvalidOperationException("projection used before the store opened");
            var t1 = AppendProfile.Now();
            await Inner.ApplyAsync(new Writer(operations, reader), list, cancellation);
            ProjectionProfile.Add(t1 - t0, AppendProfile.Now() - t1, events.Count);
        }
    }

    private sealed class Writer(IDocumentOperations ops, MartenEventStore store) : IProjectionWriter
    {
        public void Store<T>(T document) where T : class { ProjectionProfile.Write(); ops.Store(document); }
        public void Delete<T>(string id) where T : class { ProjectionProfile.Write(); ops.Delete<T>(id); }
        public async Task<T?> LoadAsync<T>(string id, CancellationToken ct) where T : class => await ops.LoadAsync<T>(id, ct);
        public IAsyncEnumerable<StoredEvent> ReadSessionAsync(string session, long fromSeq, long toSeq, CancellationToken ct) =>
            store.ReadSessionAsync(session, fromSeq, toSeq, ct);
        public Task<LoadedSnapshot?> LoadSnapshotAsync(string session, long atOrBelowSeq, CancellationToken ct) =>
            store.LoadSnapshotAsync(session, atOrBelowSeq, ct);
    }
}
