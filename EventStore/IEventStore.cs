using System.Linq.Expressions;

namespace Sva.EventStore;

/// <summary>
/// The store port: everything the rest of the code may ask of the event store. It knows sessions (streams), seqs
/// (stream versions), event objects with their stored type names, metadata texts, snapshots, recording sources and
/// projection documents; nothing of IOMMUs. The one implementation is <see cref="MartenEventStore"/>.
/// </summary>
public interface IEventStore : IAsyncDisposable
{
    /// <summary>host:port of the database (as named in exception messages).</summary>
    string Endpoint { get; }

    Task<SessionInfo?> GetSessionAsync(string id, CancellationToken ct = default);
    Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken ct = default);

    /// <summary>Reads, with plain SQL, what the newest schema added (the sessions' documents, the snapshot table, every
    /// projection document's duplicated session column): on a database an older version wrote, the missing table or column
    /// throws PostgreSQL's 42P01 / 42703, so that a writer can apply the schema first. Builds no Marten store.</summary>
    Task ProbeSchemaAsync(CancellationToken ct = default);

    /// <summary>
    /// Appends the batch if the session's version is <see cref="AppendBatch.ExpectedVersion"/>, in one transaction with
    /// the snapshots, the source progress and (first append) the session's identity. A command id
    /// that appended before returns its first result with <see cref="AppendResult.Duplicate"/> and writes nothing.
    /// </summary>
    /// <exception cref="ConcurrencyException">The session is not at the expected version; nothing was written.</exception>
    /// <exception cref="SessionNotFoundException">Expected version &gt; 0 of a session that does not exist, or a first append without <see cref="AppendBatch.Create"/>.</exception>
    /// <exception cref="EventStoreUnavailableException">The database cannot be reached.</exception>
    Task<AppendResult> AppendAsync(AppendBatch batch, CancellationToken ct = default);

    /// <summary>The session's events with fromSeq &lt;= seq &lt;= toSeq, in seq order, read in pages.</summary>
    IAsyncEnumerable<StoredEvent> ReadSessionAsync(string session, long fromSeq = 1, long toSeq = long.MaxValue, CancellationToken ct = default);

    /// <summary>The session's events with fromSeq &lt;= seq &lt;= toSeq, in seq order, with their type and data only (what a fold
    /// needs: time travel's tail). By default: <see cref="ReadSessionAsync"/> without the rest.</summary>
    async IAsyncEnumerable<EventData> ReadSessionDataAsync(string session, long fromSeq, long toSeq,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var e in ReadSessionAsync(session, fromSeq, toSeq, ct)) yield return new EventData(e.Session, e.Seq, e.Type, e.DataJson);
    }

    /// <summary>The session's events of the stored types <paramref name="types"/> with fromSeq &lt;= seq &lt;= toSeq, in seq order:
    /// the others are passed over in the database (e.g. the handle_issued events before a snapshot). By default: filtered here.</summary>
    async IAsyncEnumerable<StoredEvent> ReadSessionOfTypesAsync(string session, IReadOnlyCollection<string> types, long fromSeq, long toSeq,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var e in ReadSessionAsync(session, fromSeq, toSeq, ct))
            if (types.Contains(e.Type)) yield return e;
    }

    /// <summary>The session's events in several seq ranges (each event once, in seq order): one round trip where the store can
    /// (provenance reads the few events around many seqs). The default reads range by range.</summary>
    async IAsyncEnumerable<StoredEvent> ReadSessionRangesAsync(string session, IReadOnlyList<(long From, long To)> ranges,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var next = 1L;
        foreach (var (from, to) in ranges.OrderBy(r => r.From))
            await foreach (var e in ReadSessionAsync(session, Math.Max(from, next), to, ct))
            {
                next = e.Seq + 1;
                yield return e;
            }
    }

    /// <summary>
    /// For each of <paramref name="seqs"/> (that exists), the event and the group it belongs to, in seq order: a group starts at an
    /// event whose metadata (a JSON object) has an object at <paramref name="startKey"/> and goes on over the events after it with
    /// the same value at <paramref name="groupKey"/> and none at <paramref name="startKey"/> (provenance: the call an event belongs
    /// to). The group's events give their type and the string at <paramref name="dataField"/> of their data. One round trip, the
    /// walks done by the server on the (session, seq) index. Two shortcuts for writers that know their groups: a number n ≥ 1 at
    /// <paramref name="offsetKey"/> says the group's first event is n events back (one look-up instead of the backward walk; used
    /// only when that event starts a group with the same <paramref name="groupKey"/> value, else <see cref="GroupedEvent.GroupSeq"/>
    /// is null); a group whose first event's metadata has <paramref name="summaryKey"/> is not walked to its end (its
    /// <see cref="GroupedEvent.GroupTypes"/> and <see cref="GroupedEvent.GroupFields"/> are empty: the caller reads what it needs
    /// there). Null when the server cannot read a metadata or data text as JSON (the caller then reads the events itself and
    /// names the bad seq).
    /// </summary>
    Task<IReadOnlyList<GroupedEvent>?> ReadGroupsAsync(string session, IReadOnlyList<long> seqs, string startKey, string groupKey, string dataField,
        string? offsetKey = null, string? summaryKey = null, CancellationToken ct = default);

    /// <summary>The trusted snapshot with the highest seq &lt;= <paramref name="atOrBelowSeq"/>: one whose SHA-256 the log recorded at
    /// its seq. Snapshots that fail that check are passed over (an earlier one, or none, is returned).</summary>
    Task<LoadedSnapshot?> LoadSnapshotAsync(string session, long atOrBelowSeq, CancellationToken ct = default);
    /// <summary>The events (type and data) after the newest snapshot at or below <paramref name="atSeq"/> — trusted or not, row or older
    /// document — up to <paramref name="atSeq"/>, and that snapshot's seq (0: none). Time travel reads this tail while it loads
    /// the snapshot; when the snapshot it gets is an earlier one, it reads the events between. At most <paramref name="max"/> events
    /// (the first ones). The default lists the snapshots first.</summary>
    async Task<(long After, IReadOnlyList<EventData> Events)> ReadTailAfterSnapshotAsync(string session, long atSeq, int max, CancellationToken ct = default)
    {
        var after = (await ListSnapshotsAsync(session, ct)).Where(s => s.Seq <= atSeq).Select(s => s.Seq).DefaultIfEmpty(0).Max();
        var list = new List<EventData>();
        await foreach (var e in ReadSessionDataAsync(session, after + 1, Math.Min(atSeq, after + max), ct)) list.Add(e);
        return (after, list);
    }

    Task<IReadOnlyList<(long Seq, long Bytes)>> ListSnapshotsAsync(string session, CancellationToken ct = default);
    /// <summary>Deletes a session's snapshots (a cache: no answer changes, only speed). Returns how many.</summary>
    Task<int> DeleteSnapshotsAsync(string session, CancellationToken ct = default);

    /// <summary>The last seq whose recorded time is at or before <paramref name="time"/> (0 when the first event is later).</summary>
    Task<long> SeqAtTimeAsync(string session, DateTimeOffset time, CancellationToken ct = default);

    /// <summary>Recomputes the session's hash chain and checks the stream head and the snapshots against it.</summary>
    Task<VerifyResult> VerifyAsync(string session, CancellationToken ct = default);

    Task<SourceProgress?> FindSourceAsync(string id, CancellationToken ct = default);
    Task<SourceProgress?> FindSourceBySessionAsync(string session, string kind, CancellationToken ct = default);
    /// <summary>Stores a source's progress on its own (e.g. marking an import complete after its last batch).</summary>
    Task SaveSourceAsync(SourceProgress progress, CancellationToken ct = default);

    /// <summary>Tries to take the writer's lease <paramref name="name"/> in the database that holds <paramref name="session"/>
    /// (an advisory lock held until disposed, or until this process dies); when another live writer holds it, the result is
    /// not <see cref="WriterLease.Held"/> and names that writer.</summary>
    Task<WriterLease> TryLeaseAsync(string session, string name, CancellationToken ct = default);

    /// <summary>Documents of a projection.</summary>
    Task<IReadOnlyList<T>> QueryAsync<T>(Expression<Func<T, bool>> where, CancellationToken ct = default) where T : class;

    /// <summary>A projection's documents of one session, as stored JSON (read with plain SQL by the duplicated session column),
    /// with the projection's checkpoint read before them: every event at or below that global position is in them. Null when the
    /// store cannot say (no such table or checkpoint: the caller reads the log instead).</summary>
    Task<(long Checkpoint, IReadOnlyList<string> Documents)?> ProjectionDocumentsAsync(string projection, Type documentType, string session,
        CancellationToken ct = default) => Task.FromResult<(long, IReadOnlyList<string>)?>(null);

    /// <summary>The first seq of the session whose global position is above <paramref name="position"/> (a projection's checkpoint):
    /// where its lag begins in that session. Null when every event of the session is at or below it.</summary>
    Task<long?> FirstSeqAfterPositionAsync(string session, long position, CancellationToken ct = default);

    /// <summary>Every projection with its checkpoint, and the store's head (the highest global position).</summary>
    Task<(IReadOnlyList<ProjectionProgress> Projections, long Head)> ProjectionStatusAsync(CancellationToken ct = default);
    /// <summary>Recomputes a projection from position 1 through Marten's daemon (its documents are replaced).</summary>
    /// <param name="progress">Told the position the rebuild has reached, as its pages commit (for a progress bar).</param>
    Task RebuildProjectionAsync(string name, TimeSpan timeout, CancellationToken ct = default, IProgress<long>? progress = null);
    /// <summary>
    /// Recomputes <paramref name="projection"/> (whose one document type is <typeparamref name="TDoc"/>) without Marten's daemon:
    /// every session's events up to Marten's high-water mark (a position no uncommitted append can be at or below) are read
    /// with plain SQL, type and data only, and handed to a fold per session; the final documents of every session replace
    /// the old ones in one transaction that also sets the projection's checkpoint to that mark, so the daemon continues
    /// from there. A fold that throws leaves the old documents and checkpoint as they were.
    /// </summary>
    /// <param name="progress">Told how many events have been folded so far.</param>
    Task<FoldRebuildResult> RebuildByFoldAsync<TDoc>(string projection, Func<string, ISessionFold<TDoc>> fold,
        IProgress<long>? progress = null, CancellationToken ct = default) where TDoc : class;
    /// <summary>Runs the async projections with Marten's daemon: until caught up (<paramref name="once"/>) or until cancelled.</summary>
    Task RunDaemonAsync(bool once, TimeSpan catchUpTimeout, CancellationToken ct = default);

    /// <summary>
    /// After a writing command: brings the async projections up to the head when this store appended anything. Left to the
    /// running daemon when one holds Marten's leader lock; two writers that finish together take turns (the second has
    /// little left). Nothing is skipped either way: a projection that is behind shows a lag in its status.
    /// Returns false when it left the work to a running daemon (or appended nothing).
    /// </summary>
    Task<bool> CatchUpAsync(TimeSpan timeout, CancellationToken ct = default);
}
