using Sva.EventStore;

namespace Sva.Commands;

/// <summary>Another live process is recording the same script into the same session.</summary>
public sealed class ScriptBeingRecordedException(string session, string holder)
    : Exception($"this script is being recorded into session '{session}' right now by another live writer: {holder}; " +
                "wait for it to finish (a run of the same script then says it was recorded completely, or resumes it if it died), " +
                "or add --again to record a full copy of the script beside it")
{
    public string Session { get; } = session;
    public string Holder { get; } = holder;
}

/// <summary>
/// The lease a script run holds on its progress record (session, script hash) while it records (<see cref="WriterLease"/>):
/// resume continues only a run whose writer is gone. When another live writer holds it, the run is refused
/// (<see cref="ScriptBeingRecordedException"/>), or with --again records a full copy under a progress record of its own
/// (<see cref="Copy"/>: <see cref="SourceId"/> is then that record's id).
/// </summary>
public sealed class RecordingLease : IAsyncDisposable
{
    private readonly WriterLease lease;

    private RecordingLease(WriterLease lease, string sourceId, bool copy, string? otherWriter)
    {
        this.lease = lease;
        SourceId = sourceId;
        Copy = copy;
        OtherWriter = otherWriter;
    }

    /// <summary>The progress record this run writes.</summary>
    public string SourceId { get; }

    /// <summary>This run records a full copy beside a live writer of the same script.</summary>
    public bool Copy { get; }

    /// <summary>When <see cref="Copy"/>: the other writer.</summary>
    public string? OtherWriter { get; }

    public static async Task<RecordingLease> TakeAsync(IEventStore store, string session, string sourceId, bool again, CancellationToken ct)
    {
        var lease = await store.TryLeaseAsync(session, sourceId, ct);
        if (lease.Held) return new RecordingLease(lease, sourceId, copy: false, null);
        var holder = lease.Holder ?? "another writer";
        if (!again) throw new ScriptBeingRecordedException(session, holder);
        // A copy's own progress record: unique to this run, and leased like any other.
        var copyId = $"{sourceId}|copy|{Guid.CreateVersion7():N}";
        var own = await store.TryLeaseAsync(session, copyId, ct);
        if (!own.Held) throw new InvalidOperationException($"the lease of a new progress record '{copyId}' is held by {own.Holder}");
        return new RecordingLease(own, copyId, copy: true, holder);
    }

    public ValueTask DisposeAsync() => lease.DisposeAsync();
}
