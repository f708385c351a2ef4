using Sva.Domain;
using Sva.EventStore;
using Sva.Projections;

namespace Sva.Commands;

/// <summary>Decided events of one batch, encoded, with what goes into the same transaction.</summary>
public sealed record PreparedBatch(long ExpectedVersion, Guid CommandId, IReadOnlyList<NewEvent> Events)
{
    public IReadOnlyList<SnapshotToSave> Snapshots { get; init; } = [];
    public SourceProgress? Progress { get; init; }
    public long LastSeq => ExpectedVersion + Events.Count;
}

/// <summary>
/// When a snapshot is due. For recorded calls: right after the call that crosses each multiple of <see cref="Every"/>
/// events, so snapshot seqs do not depend on how calls are batched. For an import, which has no calls: at the end of a
/// batch at least <see cref="Every"/> events after the last snapshot, spaced further apart as the state grows when
/// <see cref="MaxBytesPerEvent"/> is set (the import's spacing), so that a long capture does not write O(n^2) bytes.
/// </summary>
public sealed class SnapshotPolicy(int every, int maxBytesPerEvent = 0)
{
    /// <summary>Events between snapshots (see README's time-travel figures for how it was chosen).</summary>
    public const int DefaultEvery = 1024;

    /// <summary>The import's spacing: at most ~64 bytes of snapshot per imported event.</summary>
    public const int ImportBytesPerEvent = 64;

    public int Every { get; } = every;

    /// <summary>0: fixed spacing; otherwise the spacing grows so that snapshots total at most this many bytes per event.</summary>
    public int MaxBytesPerEvent { get; } = maxBytesPerEvent;

    private long lastSeq, lastBytes;

    /// <summary>Where the events this policy's snapshots follow came from: each snapshot carries its set-at seqs' entries.</summary>
    public ProvenanceBook? Book { get; init; }

    /// <summary>The import's policy: every <paramref name="every"/> events at least, spaced by size.</summary>
    public static SnapshotPolicy ForImport(int every, ProvenanceBook? book = null) => new(every, ImportBytesPerEvent) { Book = book };

    /// <summary>Call after each call was applied to <paramref name="state"/>, with its seq before the call.</summary>
    public SnapshotToSave? After(SvaState state, long seqBefore) =>
        Every <= 0 || state.Seq / Every <= seqBefore / Every ? null : StateSnapshot.Take(state, Book);

    /// <summary>Where batch-end snapshots count from (the session's head when a run starts).</summary>
    public void StartAt(long seq) => lastSeq = seq;

    /// <summary>Call at the end of a batch (<paramref name="state"/> at the batch's last seq). Written like the recorder's
    /// (MemoryPack, encoding 2); the size of the last one (uncompressed payload) sets the spacing.</summary>
    public SnapshotToSave? AtBatchEnd(SvaState state)
    {
        var spacing = MaxBytesPerEvent > 0 ? Math.Max(Every, lastBytes / MaxBytesPerEvent) : Every;
        if (Every <= 0 || state.Seq - lastSeq < spacing) return null;
        var snapshot = StateSnapshot.Take(state, Book);
        lastSeq = state.Seq;
        lastBytes = snapshot.Payload.Length;
        return snapshot;
    }
}

/// <summary>
/// The one writer of sessions: appends prepared batches in seq order with at most one append in flight, so the caller
/// decides and encodes batch k+1 while batch k is written. The first append of a new session carries its identity
/// (a session exists only once its first event is committed). Used by run, import and generate.
/// </summary>
public sealed class SessionRecorder(IEventStore store, string session, NewSession? create)
{
    private Task<AppendResult>? inflight;
    private NewSession? pendingCreate = create;

    public string Session { get; } = session;

    /// <summary>Called after each batch committed (in order), e.g. to stream outcomes.</summary>
    public Func<PreparedBatch, AppendResult, Task>? Committed { get; init; }

    /// <summary>Waits for the batch in flight, then starts appending <paramref name="batch"/>.</summary>
    public async Task EnqueueAsync(PreparedBatch batch, CancellationToken ct)
    {
        await DrainAsync();
        var create = batch.ExpectedVersion == 0 ? pendingCreate : null;
        inflight = AppendAsync(batch, create, ct);
    }

    private async Task<AppendResult> AppendAsync(PreparedBatch batch, NewSession? create, CancellationToken ct)
    {
        var r = await store.AppendAsync(new AppendBatch(Session, batch.ExpectedVersion, batch.CommandId, batch.Events)
        {
            Create = create,
            Snapshots = batch.Snapshots,
            Progress = batch.Progress,
        }, ct);
        if (r.FirstSeq != batch.ExpectedVersion + 1 || r.LastSeq != batch.LastSeq)
            throw new InvalidOperationException($"batch {batch.CommandId} of session {Session} was recorded as seqs {r.FirstSeq}..{r.LastSeq}, not {batch.ExpectedVersion + 1}..{batch.LastSeq}: the log and this recording disagree");
        if (create is not null) pendingCreate = null;
        if (Committed is { } c) await c(batch, r);
        return r;
    }

    /// <summary>Waits for the batch in flight; its failure surfaces here.</summary>
    public async Task<AppendResult?> DrainAsync()
    {
        var t = inflight;
        inflight = null;
        return t is null ? null : await t;
    }

    /// <summary>On the way out after an error: let the batch in flight finish (or fail) before the first error propagates.</summary>
    public async Task DrainQuietlyAsync()
    {
        try { await DrainAsync(); }
        catch (Exception) { /* the first error is the one reported */ }
    }
}
