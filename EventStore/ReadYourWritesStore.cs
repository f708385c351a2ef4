using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Npgsql;

namespace Sva.EventStore;

/// <summary>
/// Reads from a streaming replica (a hot standby) without ever answering from behind a write: before its first read it
/// takes the primary's WAL insert position (<c>pg_current_wal_insert_lsn()</c>, at or past the commit record of every
/// transaction committed before this moment, also with <c>synchronous_commit = off</c>) and waits until the standby has
/// replayed up to it (<c>pg_last_wal_replay_lsn()</c>), up to <see cref="Timeout"/>. Then every read goes to the standby.
/// If the standby does not get there in time, or cannot be reached, reads go to the primary (as the read-only role) and
/// <see cref="Log"/> says so. If the replica connection is not a standby at all, it is simply read. The primary being
/// unreachable is <see cref="EventStoreUnavailableException"/> naming it: freshness cannot be proven without it.
/// The barrier is taken once per instance (a CLI call is one process, one query): writes made after it may not be seen.
/// </summary>
public sealed class ReadYourWritesStore : IEventStore
{
    private readonly string _name;
    private readonly string _primaryCs;
    private readonly string _replicaCs;
    private readonly string _primaryLsnCs;
    private readonly Func<string, CancellationToken, Task<IEventStore>> _open;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IEventStore? _inner;

    /// <param name="name">For messages (e.g. "shard1").</param>
    /// <param name="primaryReaderCs">The primary, as the read-only role.</param>
    /// <param name="replicaCs">The replica, as the read-only role.</param>
    /// <param name="open">Opens a read-only store on a connection string.</param>
    /// <param name="primaryLsnCs">The primary, as any role that can log in (it only asks for the WAL position); default the reader.</param>
    public ReadYourWritesStore(string name, string primaryReaderCs, string replicaCs, Func<string, CancellationToken, Task<IEventStore>> open, string? primaryLsnCs = null)
    {
        _primaryLsnCs = primaryLsnCs ?? primaryReaderCs;
        _name = name;
        _primaryCs = primaryReaderCs;
        _replicaCs = replicaCs;
        _open = open;
        Endpoint = EndpointOf(replicaCs);
    }

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
    public Action<string> Log { get; init; } = _ => { };
    /// <summary>Told where reads go when the replica caught up (for --verbose).</summary>
    public Action<string>? Trace { get; init; }

    /// <summary>What the barrier found: "replica" (read there), "primary" (fell back) or null (no read yet).</summary>
    public string? ReadingFrom { get; private set; }
    /// <summary>How long the wait for the replica took.</summary>
    public TimeSpan? Waited { get; private set; }

    public string Endpoint { get; private set; }

    public static string EndpointOf(string cs)
    {
        var b = new NpgsqlConnectionStringBuilder(cs);
        return $"{(string.IsNullOrEmpty(b.Host) ? "localhost" : b.Host)}:{b.Port}";
    }

    /// <summary>Takes the barrier and opens the store it chose now (instead of at the first read).</summary>
    public async Task EnsureAsync(CancellationToken ct = default) => await InnerAsync(ct);

    private async Task<IEventStore> InnerAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _inner) is { } s) return s;
        await _gate.WaitAsync(ct);
        try
        {
            if (_inner is not null) return _inner;
            var useReplica = await BarrierAsync(ct);
            var cs = useReplica ? _replicaCs : _primaryCs;
            var store = await _open(cs, ct);
            Endpoint = EndpointOf(cs);
            ReadingFrom = useReplica ? "replica" : "primary";
            Volatile.Write(ref _inner, store);
            return store;
        }
        finally { _gate.Release(); }
    }

    /// <summary>True: the replica has replayed every commit the primary had when this was called (or is no standby).</summary>
    private async Task<bool> BarrierAsync(CancellationToken ct)
    {
        string target;
        try
        {
            await using var p = new NpgsqlConnection(_primaryLsnCs);
            await p.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", p);
            target = (string)(await cmd.ExecuteScalarAsync(ct))!;
        }
        catch (Exception ex) when (MartenEventStore.IsUnavailable(ex) && !ct.IsCancellationRequested)
        {
            throw new EventStoreUnavailableException($"{EndpointOf(_primaryCs)}, the primary of {_name} (needed to know how far its replica must have replayed)", ex);
        }

        var sw = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await using var r = new NpgsqlConnection(_replicaCs);
            await r.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false), pg_last_wal_replay_lsn()::text", r)
                { Parameters = { new NpgsqlParameter<string> { TypedValue = target } } };
            await cmd.PrepareAsync(ct);
            string? at = null;
            while (true)
            {
                await using (var rd = await cmd.ExecuteReaderAsync(ct))
                {
                    await rd.ReadAsync(ct);
                    if (!rd.GetBoolean(0)) { Waited = sw.Elapsed; return true; } // not a standby: nothing to wait for
                    if (rd.GetBoolean(1))
                    {
                        Waited = sw.Elapsed;
                        Trace?.Invoke($"{_name}: reading the replica at {EndpointOf(_replicaCs)}: it had replayed the primary's position {target} after {sw.Elapsed.TotalMilliseconds:F0} ms");
                        return true;
                    }
                    at = rd.IsDBNull(2) ? null : rd.GetString(2);
                }
                if (sw.Elapsed >= Timeout) break;
                await Task.Delay(5, ct);
            }
            Waited = sw.Elapsed;
            Log($"{_name}: the replica at {EndpointOf(_replicaCs)} had replayed WAL up to {at ?? "nothing"}, not yet {target} (the primary's position before this read), after {Timeout.TotalSeconds:0.###} s: reading the primary {EndpointOf(_primaryCs)} instead");
            return false;
        }
        catch (Exception ex) when (MartenEventStore.IsUnavailable(ex) && !ct.IsCancellationRequested)
        {
            Waited = sw.Elapsed;
            Log($"{_name}: the replica at {EndpointOf(_replicaCs)} cannot be reached ({ex.Message}): reading the primary {EndpointOf(_primaryCs)} instead");
            return false;
        }
    }

    public async Task<SessionInfo?> GetSessionAsync(string id, CancellationToken ct = default) => await (await InnerAsync(ct)).GetSessionAsync(id, ct);
    public async Task ProbeSchemaAsync(CancellationToken ct = default) => await (await InnerAsync(ct)).ProbeSchemaAsync(ct);

    public async Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken ct = default) => await (await InnerAsync(ct)).ListSessionsAsync(ct);
    public Task<AppendResult> AppendAsync(AppendBatch batch, CancellationToken ct = default) =>
        throw new InvalidOperationException("this store reads (from a replica): it does not append");

    public async IAsyncEnumerable<StoredEvent> ReadSessionAsync(string session, long fromSeq = 1, long toSeq = long.MaxValue,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var inner = await InnerAsync(ct);
        await foreach (var e in inner.ReadSessionAsync(session, fromSeq, toSeq, ct)) yield return e;
    }

    public async IAsyncEnumerable<EventData> ReadSessionDataAsync(string session, long fromSeq, long toSeq,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var inner = await InnerAsync(ct);
        await foreach (var e in inner.ReadSessionDataAsync(session, fromSeq, toSeq, ct)) yield return e;
    }

    public async IAsyncEnumerable<StoredEvent> ReadSessionOfTypesAsync(string session, IReadOnlyCollection<string> types, long fromSeq, long toSeq,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var inner = await InnerAsync(ct);
        await foreach (var e in inner.ReadSessionOfTypesAsync(session, types, fromSeq, toSeq, ct)) yield return e;
    }

    public async IAsyncEnumerable<StoredEvent> ReadSessionRangesAsync(string session, IReadOnlyList<(long From, long To)> ranges,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var inner = await InnerAsync(ct);
        await foreach (var e in inner.ReadSessionRangesAsync(session, ranges, ct)) yield return e;
    }

    public async Task<IReadOnlyList<GroupedEvent>?> ReadGroupsAsync(string session, IReadOnlyList<long> seqs, string startKey, string groupKey,
        string dataField, string? offsetKey = null, string? summaryKey = null, CancellationToken ct = default) =>
        await (await InnerAsync(ct)).ReadGroupsAsync(session, seqs, startKey, groupKey, dataField, offsetKey, summaryKey, ct);

    public async Task<LoadedSnapshot?> LoadSnapshotAsync(string session, long atOrBelowSeq, CancellationToken ct = default) => await (await InnerAsync(ct)).LoadSnapshotAsync(session, atOrBelowSeq, ct);
    public async Task<(long Checkpoint, IReadOnlyList<string> Documents)?> ProjectionDocumentsAsync(string projection, Type documentType, string session,
        CancellationToken ct = default) => await (await InnerAsync(ct)).ProjectionDocumentsAsync(projection, documentType, session, ct);
    public async Task<long?> FirstSeqAfterPositionAsync(string session, long position, CancellationToken ct = default) =>
        await (await InnerAsync(ct)).FirstSeqAfterPositionAsync(session, position, ct);
    public async Task<(long After, IReadOnlyList<EventData> Events)> ReadTailAfterSnapshotAsync(string session, long atSeq, int max, CancellationToken ct = default) =>
        await (await InnerAsync(ct)).ReadTailAfterSnapshotAsync(session, atSeq, max, ct);
    public async Task<IReadOnlyList<(long Seq, long Bytes)>> ListSnapshotsAsync(string session, CancellationToken ct = default) => await (await InnerAsync(ct)).ListSnapshotsAsync(session, ct);
    public Task<int> DeleteSnapshotsAsync(string session, CancellationToken ct = default) =>
        throw new InvalidOperationException("this store reads (from a replica): it does not delete");
    public async Task<long> SeqAtTimeAsync(string session, DateTimeOffset time, CancellationToken ct = default) => await (await InnerAsync(ct)).SeqAtTimeAsync(session, time, ct);
    public async Task<VerifyResult> VerifyAsync(string session, CancellationToken ct = default) => await (await InnerAsync(ct)).VerifyAsync(session, ct);
    public async Task<SourceProgress?> FindSourceAsync(string id, CancellationToken ct = default) => await (await InnerAsync(ct)).FindSourceAsync(id, ct);
    public async Task<SourceProgress?> FindSourceBySessionAsync(string session, string kind, CancellationToken ct = default) => await (await InnerAsync(ct)).FindSourceBySessionAsync(session, kind, ct);
    public Task SaveSourceAsync(SourceProgress progress, CancellationToken ct = default) =>
        throw new InvalidOperationException("this store reads (from a replica): it does not write");
    public Task<WriterLease> TryLeaseAsync(string session, string name, CancellationToken ct = default) =>
        throw new InvalidOperationException("this store reads (from a replica): it does not write");
    public async Task<IReadOnlyList<T>> QueryAsync<T>(Expression<Func<T, bool>> where, CancellationToken ct = default) where T : class => await (await InnerAsync(ct)).QueryAsync(where, ct);
    public async Task<(IReadOnlyList<ProjectionProgress> Projections, long Head)> ProjectionStatusAsync(CancellationToken ct = default) => await (await InnerAsync(ct)).ProjectionStatusAsync(ct);
    public Task RebuildProjectionAsync(string name, TimeSpan timeout, CancellationToken ct = default, IProgress<long>? progress = null) =>
        throw new InvalidOperationException("this store reads (from a replica): rebuild on the primary");
    public Task<FoldRebuildResult> RebuildByFoldAsync<TDoc>(string projection, Func<string, ISessionFold<TDoc>> fold,
        IProgress<long>? progress = null, CancellationToken ct = default) where TDoc : class =>
        throw new InvalidOperationException("this store reads (from a replica): rebuild on the primary");
    public Task<bool> CatchUpAsync(TimeSpan timeout, CancellationToken ct = default) => Task.FromResult(false);

    public Task RunDaemonAsync(bool once, TimeSpan catchUpTimeout, CancellationToken ct = default) =>
        throw new InvalidOperationException("this store reads (from a replica): run the daemon on the primary");

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _inner, null) is { } s) await s.DisposeAsync();
    }
}
