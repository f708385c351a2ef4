namespace Sva.EventStore;

// Recording sources (import, run) and their progress.
public sealed partial class MartenEventStore
{
    // ------------------------------------------------------------------ recording sources

    public Task<SourceProgress?> FindSourceAsync(string id, CancellationToken ct = default) =>
        RunAsync(async () =>
        {
            await using var q = _store.QuerySession();
            return ToProgress(await q.LoadAsync<SourceDoc>(id, ct));
        }, ct);

    public Task<SourceProgress?> FindSourceBySessionAsync(string session, string kind, CancellationToken ct = default) =>
        RunAsync(async () =>
        {
            await using var q = _store.QuerySession();
            return ToProgress(await q.Query<SourceDoc>().Where(x => x.Session == session && x.Kind == kind).FirstOrDefaultAsync(ct));
        }, ct);

    public Task SaveSourceAsync(SourceProgress p, CancellationToken ct = default) =>
        RunAsync(async () =>
        {
            await using var s = _store.LightweightSession();
            s.Store(new SourceDoc { Id = p.Id, Session = p.Session, Kind = p.Kind, Complete = p.Complete, Json = p.Json });
            await s.SaveChangesAsync(ct);
            return true;
        }, ct);

    public Task<WriterLease> TryLeaseAsync(string session, string name, CancellationToken ct = default) =>
        RunAsync(() => WriterLease.TryTakeAsync(_dataSource, name, ct), ct);

    private static SourceProgress? ToProgress(SourceDoc? d) => d is null ? null : new SourceProgress(d.Id, d.Session, d.Kind, d.Complete, d.Json);
}
