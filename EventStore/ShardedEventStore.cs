using System.Collections.Concurrent;
using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace Sva.EventStore;

/// <summary>One shard: its name (shard1, shard2, …, by position in SVA_SHARDS), where it is (host:port, for messages) and
/// how to open its store (opened on first use, so that a shard that is down fails only the calls that need it).</summary>
public sealed record ShardSpec(string Name, string Endpoint, Func<CancellationToken, Task<IEventStore>> Open);

/// <summary>
/// Sessions spread over several PostgreSQL databases, one <see cref="IEventStore"/> (a <see cref="MartenEventStore"/>) per
/// shard. A session lives entirely on one shard: its whole stream, its snapshots, its read-model rows and its identity
/// document. Placement: a new session goes to its home shard (SHA-256 of its name, modulo the number of shards); the
/// identity document that the first append writes, in the same transaction as the first events, is the record of the
/// placement. A session is found by asking its home shard first, then every other shard (placed under another shard
/// list): it is never moved, and a session found on two shards, or not found while a shard that might hold it is down,
/// is an error, not a guess. Calls that span sessions (list, queries, projections, the daemon) fan out over all shards
/// in parallel. A shard that cannot be reached surfaces as <see cref="EventStoreUnavailableException"/> naming it.
/// </summary>
public sealed class ShardedEventStore : IEventStore
{
    private readonly ShardSpec[] _shards;
    private readonly IEventStore?[] _open;
    private readonly SemaphoreSlim[] _gates;
    private readonly ConcurrentDictionary<string, int> _placement = new(StringComparer.Ordinal);

    public ShardedEventStore(IReadOnlyList<ShardSpec> shards)
    {
        ArgumentNullException.ThrowIfNull(shards);
        if (shards.Count == 0) throw new ArgumentException("no shards", nameof(shards));
        if (shards.Select(s => s.Name).Distinct(StringComparer.Ordinal).Count() != shards.Count)
            throw new ArgumentException("two shards have the same name", nameof(shards));
        _shards = shards.ToArray();
        _open = new IEventStore?[_shards.Length];
        _gates = _shards.Select(_ => new SemaphoreSlim(1, 1)).ToArray();
    }

    public string Endpoint => string.Join(", ", _shards.Select(s => $"{s.Name} {s.Endpoint}"));
    public IReadOnlyList<string> ShardNames => _shards.Select(s => s.Name).ToList();

    /// <summary>The shard a new session named <paramref name="session"/> is placed on.</summary>
    public int HomeShard(string session)
    {
        Span<byte> d = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(session), d);
        return (int)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(d) % (ulong)_shards.Length);
    }

    /// <summary>The name of the shard a session was found on by this instance (null: not looked up yet, or absent).</summary>
    public string? ShardOf(string session) => _placement.TryGetValue(session, out var i) ? _shards[i].Name : null;

    // ------------------------------------------------------------------ plumbing

    private async Task<IEventStore> StoreAsync(int i, CancellationToken ct)
    {
        if (Volatile.Read(ref _open[i]) is { } s) return s;
        await _gates[i].WaitAsync(ct);
        try
        {
            if (_open[i] is { } again) return again;
            var opened = await _shards[i].Open(ct);
            Volatile.Write(ref _open[i], opened);
            return opened;
        }
        catch (Exception ex) when (ex is not EventStoreUnavailableException && MartenEventStore.IsUnavailable(ex) && !ct.IsCancellationRequested)
        {
            throw Named(i, new EventStoreUnavailableException(_shards[i].Endpoint, ex));
        }
        catch (EventStoreUnavailableException ex)
        {
            throw Named(i, ex);
        }
        finally
        {
            _gates[i].Release();
        }
    }

    private EventStoreUnavailableException Named(int i, EventStoreUnavailableException ex) =>
        ex.Endpoint.StartsWith(_shards[i].Name + " ", StringComparison.Ordinal)
            ? ex
            : new EventStoreUnavailableException($"{_shards[i].Name} ({_shards[i].Endpoint})", ex.InnerException ?? ex);

    /// <summary>Runs <paramref name="body"/> on shard <paramref name="i"/>; an unreachable shard is named in the exception.</summary>
    private async Task<T> OnAsync<T>(int i, Func<IEventStore, Task<T>> body, CancellationToken ct)
    {
        var store = await StoreAsync(i, ct);
        try { return await body(store); }
        catch (EventStoreUnavailableException ex) { throw Named(i, ex); }
    }

    /// <summary>Runs <paramref name="body"/> on every shard in parallel; all must succeed (the first unreachable shard is named).</summary>
    private async Task<T[]> AllAsync<T>(Func<IEventStore, Task<T>> body, CancellationToken ct)
    {
        var tasks = Enumerable.Range(0, _shards.Length).Select(i => OnAsync(i, body, ct)).ToArray();
        try { return await Task.WhenAll(tasks); }
        catch
        {
            // Prefer naming an unreachable shard over any other failure, and all of them when several are down.
            var down = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException).OfType<EventStoreUnavailableException>().ToList();
            if (down.Count == 1) throw down[0];
            if (down.Count > 1) throw Unavailable(down, "");
            throw;
        }
    }

    private Task AllAsync(Func<IEventStore, Task> body, CancellationToken ct) =>
        AllAsync(async s => { await body(s); return true; }, ct);

    /// <summary>Several shards unreachable: one error naming all of them.</summary>
    private static EventStoreUnavailableException Unavailable(List<EventStoreUnavailableException> down, string why) =>
        new($"{string.Join("; ", down.Select(d => d.Endpoint))}{why}", down[0].InnerException ?? down[0]);

    /// <summary>
    /// Where the session lives: (shard, its info), or (home shard, null) when no shard holds it and every shard answered.
    /// </summary>
    private async Task<(int Shard, SessionInfo? Info)> LocateAsync(string session, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(session, nameof(session));
        if (_placement.TryGetValue(session, out var known))
            return (known, await OnAsync(known, s => s.GetSessionAsync(session, ct), ct));
        var home = HomeShard(session);
        var atHome = await OnAsync(home, s => s.GetSessionAsync(session, ct), ct);
        if (atHome is not null) { _placement[session] = home; return (home, atHome); }
        if (_shards.Length == 1) return (home, null);

        var others = Enumerable.Range(0, _shards.Length).Where(i => i != home).ToArray();
        var tasks = others.Select(i => OnAsync(i, s => s.GetSessionAsync(session, ct), ct)).ToArray();
        try { await Task.WhenAll(tasks); } catch { /* looked at below, shard by shard */ }
        var found = new List<(int, SessionInfo)>();
        var down = new List<EventStoreUnavailableException>();
        for (var k = 0; k < tasks.Length; k++)
        {
            if (tasks[k].IsCompletedSuccessfully) { if (tasks[k].Result is { } info) found.Add((others[k], info)); }
            else if (tasks[k].Exception?.InnerException is EventStoreUnavailableException u) down.Add(u);
            else await tasks[k]; // rethrows anything else
        }
        if (found.Count > 1)
            throw new InvalidOperationException($"session '{session}' exists on {string.Join(" and ", found.Select(f => _shards[f.Item1].Name))}: a session must live on one shard; not guessing which");
        if (found.Count == 1) { _placement[session] = found[0].Item1; return found[0]; }
        if (down.Count > 0)
            throw Unavailable(down, $" (session '{session}' is not on {_shards[home].Name}, its home shard, and may live there)");
        return (home, null);
    }

    private async Task<int> ShardForAsync(string session, CancellationToken ct) => (await LocateAsync(session, ct)).Shard;

    // ------------------------------------------------------------------ sessions

    public async Task<SessionInfo?> GetSessionAsync(string id, CancellationToken ct = default) => (await LocateAsync(id, ct)).Info;

    public Task ProbeSchemaAsync(CancellationToken ct = default) => AllAsync(s => s.ProbeSchemaAsync(ct), ct);

    public async Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken ct = default)
    {
        var perShard = await AllAsync(s => s.ListSessionsAsync(ct), ct);
        var all = new List<SessionInfo>();
        var where = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < perShard.Length; i++)
            foreach (var s in perShard[i])
            {
                if (where.TryGetValue(s.Id, out var other))
                    throw new InvalidOperationException($"session '{s.Id}' exists on {_shards[other].Name} and {_shards[i].Name}: a session must live on one shard");
                where[s.Id] = i;
                _placement[s.Id] = i;
                all.Add(s);
            }
        return all.OrderBy(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>Every session with the name of its shard (listed in parallel).</summary>
    public async Task<IReadOnlyList<(SessionInfo Session, string Shard)>> ListSessionsWithShardsAsync(CancellationToken ct = default) =>
        (await ListSessionsAsync(ct)).Select(s => (s, _shards[_placement[s.Id]].Name)).ToList();

    public async Task<AppendResult> AppendAsync(AppendBatch batch, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var (shard, info) = await LocateAsync(batch.Session, ct);
        var r = await OnAsync(shard, s => s.AppendAsync(batch, ct), ct);
        if (info is null) _placement[batch.Session] = shard;
        return r;
    }

    public IAsyncEnumerable<StoredEvent> ReadSessionAsync(string session, long fromSeq = 1, long toSeq = long.MaxValue, CancellationToken ct = default) =>
        ReadOnHomeAsync(session, s => s.ReadSessionAsync(session, fromSeq, toSeq, ct), ct);

    public IAsyncEnumerable<EventData> ReadSessionDataAsync(string session, long fromSeq, long toSeq, CancellationToken ct = default) =>
        ReadOnHomeAsync(session, s => s.ReadSessionDataAsync(session, fromSeq, toSeq, ct), ct);

    public IAsyncEnumerable<StoredEvent> ReadSessionOfTypesAsync(string session, IReadOnlyCollection<string> types, long fromSeq, long toSeq, CancellationToken ct = default) =>
        ReadOnHomeAsync(session, s => s.ReadSessionOfTypesAsync(session, types, fromSeq, toSeq, ct), ct);

    public IAsyncEnumerable<StoredEvent> ReadSessionRangesAsync(string session, IReadOnlyList<(long From, long To)> ranges, CancellationToken ct = default) =>
        ReadOnHomeAsync(session, s => s.ReadSessionRangesAsync(session, ranges, ct), ct);

    /// <summary>Streams a read from the session's home shard; an unavailable shard is named in the error.</summary>
    private async IAsyncEnumerable<T> ReadOnHomeAsync<T>(string session, Func<IEventStore, IAsyncEnumerable<T>> read,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var shard = await ShardForAsync(session, ct);
        var store = await StoreAsync(shard, ct);
        await using var e = read(store).GetAsyncEnumerator(ct);
        while (true)
        {
            bool more;
            try { more = await e.MoveNextAsync(); }
            catch (EventStoreUnavailableException ex) { throw Named(shard, ex); }
            if (!more) yield break;
            yield return e.Current;
        }
    }

    public async Task<IReadOnlyList<GroupedEvent>?> ReadGroupsAsync(string session, IReadOnlyList<long> seqs, string startKey, string groupKey,
        string dataField, string? offsetKey = null, string? summaryKey = null, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.ReadGroupsAsync(session, seqs, startKey, groupKey, dataField, offsetKey, summaryKey, ct), ct);

    public async Task<LoadedSnapshot?> LoadSnapshotAsync(string session, long atOrBelowSeq, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.LoadSnapshotAsync(session, atOrBelowSeq, ct), ct);

    public async Task<(long Checkpoint, IReadOnlyList<string> Documents)?> ProjectionDocumentsAsync(string projection, Type documentType, string session,
        CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.ProjectionDocumentsAsync(projection, documentType, session, ct), ct);

    public async Task<long?> FirstSeqAfterPositionAsync(string session, long position, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.FirstSeqAfterPositionAsync(session, position, ct), ct);

    public async Task<(long After, IReadOnlyList<EventData> Events)> ReadTailAfterSnapshotAsync(string session, long atSeq, int max, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.ReadTailAfterSnapshotAsync(session, atSeq, max, ct), ct);

    public async Task<IReadOnlyList<(long Seq, long Bytes)>> ListSnapshotsAsync(string session, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.ListSnapshotsAsync(session, ct), ct);

    public async Task<int> DeleteSnapshotsAsync(string session, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.DeleteSnapshotsAsync(session, ct), ct);

    public async Task<long> SeqAtTimeAsync(string session, DateTimeOffset time, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.SeqAtTimeAsync(session, time, ct), ct);

    public async Task<VerifyResult> VerifyAsync(string session, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.VerifyAsync(session, ct), ct);

    // ------------------------------------------------------------------ recording sources

    public async Task<SourceProgress?> FindSourceAsync(string id, CancellationToken ct = default)
    {
        var found = (await AllAsync(s => s.FindSourceAsync(id, ct), ct)).Where(p => p is not null).ToList();
        if (found.Count > 1) throw new InvalidOperationException($"recording source '{id}' is recorded on more than one shard");
        return found.FirstOrDefault();
    }

    public async Task<SourceProgress?> FindSourceBySessionAsync(string session, string kind, CancellationToken ct = default) =>
        await OnAsync(await ShardForAsync(session, ct), s => s.FindSourceBySessionAsync(session, kind, ct), ct);

    public async Task SaveSourceAsync(SourceProgress progress, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(progress);
        await OnAsync(await ShardForAsync(progress.Session, ct), async s => { await s.SaveSourceAsync(progress, ct); return true; }, ct);
    }

    public async Task<WriterLease> TryLeaseAsync(string session, string name, CancellationToken ct = default) =>
        await OnAsync((await LocateAsync(session, ct)).Shard, s => s.TryLeaseAsync(session, name, ct), ct);

    // ------------------------------------------------------------------ projections

    public async Task<IReadOnlyList<T>> QueryAsync<T>(Expression<Func<T, bool>> where, CancellationToken ct = default) where T : class =>
        (await AllAsync(s => s.QueryAsync(where, ct), ct)).SelectMany(x => x).ToList();

    /// <summary>Per projection: the sum of its checkpoints over the shards, against the sum of the shards' heads (so the
    /// lag shown is the total number of positions still to project, over all shards).</summary>
    public async Task<(IReadOnlyList<ProjectionProgress> Projections, long Head)> ProjectionStatusAsync(CancellationToken ct = default)
    {
        var all = await AllAsync(s => s.ProjectionStatusAsync(ct), ct);
        var names = all[0].Projections.Select(p => (p.Name, p.Mode)).ToList();
        var list = names.Select(n => new ProjectionProgress(n.Name, n.Mode,
            all.Sum(a => a.Projections.FirstOrDefault(p => p.Name == n.Name)?.Position ?? 0))).ToList();
        return (list, all.Sum(a => a.Head));
    }

    /// <summary>Per shard, in parallel.</summary>
    public async Task<IReadOnlyList<(string Shard, IReadOnlyList<ProjectionProgress> Projections, long Head)>> ProjectionStatusPerShardAsync(CancellationToken ct = default)
    {
        var all = await AllAsync(s => s.ProjectionStatusAsync(ct), ct);
        return all.Select((a, i) => (_shards[i].Name, a.Projections, a.Head)).ToList();
    }

    /// <summary>On every shard in parallel; <paramref name="progress"/> is told the sum of the shards' positions.</summary>
    public async Task RebuildProjectionAsync(string name, TimeSpan timeout, CancellationToken ct = default, IProgress<long>? progress = null)
    {
        var at = new ConcurrentDictionary<IEventStore, long>();
        await AllAsync(s => s.RebuildProjectionAsync(name, timeout, ct, progress is null ? null : new Progress(p => { at[s] = p; progress.Report(at.Values.Sum()); })), ct);
    }

    /// <summary>On every shard in parallel (each its own transaction and checkpoint); the result sums the shards'
    /// (checkpoints and heads summed, as <see cref="ProjectionStatusAsync"/> does); <paramref name="progress"/> is told the sum
    /// of the events folded.</summary>
    public async Task<FoldRebuildResult> RebuildByFoldAsync<TDoc>(string projection, Func<string, ISessionFold<TDoc>> fold,
        IProgress<long>? progress = null, CancellationToken ct = default) where TDoc : class
    {
        var at = new ConcurrentDictionary<IEventStore, long>();
        var results = new ConcurrentBag<FoldRebuildResult>();
        await AllAsync(async s => results.Add(await s.RebuildByFoldAsync(projection, fold,
            progress is null ? null : new Progress(p => { at[s] = p; progress.Report(at.Values.Sum()); }), ct)), ct);
        return new FoldRebuildResult(results.Sum(r => r.Checkpoint), results.Sum(r => r.Head), results.Sum(r => r.Sessions),
            results.Sum(r => r.Events), results.Sum(r => r.Documents))
        {
            CeilingTime = results.Max(r => r.CeilingTime), FoldTime = results.Max(r => r.FoldTime), WriteTime = results.Max(r => r.WriteTime),
        };
    }

    private sealed class Progress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }

    /// <summary>One daemon per shard, in parallel (each shard's events are projected into that shard's documents).</summary>
    public async Task RunDaemonAsync(bool once, TimeSpan catchUpTimeout, CancellationToken ct = default) =>
        await AllAsync(s => s.RunDaemonAsync(once, catchUpTimeout, ct), ct);

    /// <summary>Catches up the shards this process opened (a shard it never opened, it never appended to).</summary>
    public async Task<bool> CatchUpAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        var any = false;
        foreach (var s in _open.ToArray())
            if (s is not null) any |= await s.CatchUpAsync(timeout, ct);
        return any;
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = 0; i < _open.Length; i++)
            if (Interlocked.Exchange(ref _open[i], null) is { } s) await s.DisposeAsync();
    }
}
