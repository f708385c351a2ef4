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
