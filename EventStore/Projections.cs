namespace Sva.EventStore;

/// <summary>When a projection runs: by Marten's async daemon from its checkpoint (committed events only, never on the
/// append path). The one mode there is; a projection in the append's transaction would fold every event twice.</summary>
public enum ProjectionMode { Async }

/// <summary>An event as a projection sees it (the decoded object, not its JSON).</summary>
public sealed record ProjectedEvent(Guid Id, string Session, long Seq, long Position, string Type, object Data, string Metadata, DateTimeOffset RecordedAt)
{
    private object? _header;
    private string? _metadata = Metadata;

    /// <summary>The metadata text (<see cref="ChainHeaders.MetadataText"/>), read from the event's "meta" header on first
    /// use: most projections never look at it, and a rebuild need not render it for every event.</summary>
    public string Metadata
    {
        get => _metadata ??= ChainHeaders.MetadataText(_header);
        init => _metadata = value;
    }

    internal static ProjectedEvent FromHeader(Guid id, string session, long seq, long position, string type, object data, object? metaHeader,
        DateTimeOffset recordedAt) => new(id, session, seq, position, type, data, null!, recordedAt) { _header = metaHeader };
}

/// <summary>What a projection may do: store and delete its documents, load one, and read a session's log (to re-fold).</summary>
public interface IProjectionWriter
{
    void Store<T>(T document) where T : class;
    void Delete<T>(string id) where T : class;
    Task<T?> LoadAsync<T>(string id, CancellationToken ct) where T : class;
    IAsyncEnumerable<StoredEvent> ReadSessionAsync(string session, long fromSeq, long toSeq, CancellationToken ct);
    /// <summary>The trusted snapshot with the highest seq at or below <paramref name="atOrBelowSeq"/> (see <see cref="IEventStore.LoadSnapshotAsync"/>).</summary>
    Task<LoadedSnapshot?> LoadSnapshotAsync(string session, long atOrBelowSeq, CancellationToken ct);
}

/// <summary>
/// A projection from events to documents. The store runs it as a Marten async projection (Marten's daemon commits its
/// documents with its checkpoint). Events come in global order, committed ones only; a projection must not skip any, and
/// the store never does.
/// </summary>
public interface IDocumentProjection
{
    string Name { get; }
    ProjectionMode Mode { get; }
    /// <summary>The document types it writes (registered with Marten up front, so readers need no DDL).</summary>
    IReadOnlyList<Type> DocumentTypes { get; }
    Task ApplyAsync(IProjectionWriter writer, IReadOnlyList<ProjectedEvent> events, CancellationToken ct);

    /// <summary>It ran inline (in each append's transaction) in earlier versions of the store: in a database that has its
    /// documents but no checkpoint of it, it is current up to the head (the checkpoint is set there when the schema is applied).</summary>
    bool FormerlyInline => false;
}

/// <summary>How the store is set up: the event types (CLR type → stored name), how their JSON looks, the projections.</summary>
public sealed class StoreSetup
{
    public required IReadOnlyList<(Type Type, string Name)> EventTypes { get; init; }
    /// <summary>The JSON shape of events and documents (naming, converters). Enums are stored as names.</summary>
    public required System.Text.Json.JsonSerializerOptions Json { get; init; }
    public IReadOnlyList<IDocumentProjection> Projections { get; init; } = [];
    /// <summary>The async daemon's page size (Marten's default 500 rebuilds ~10× slower than 5,000 here).</summary>
    public int DaemonBatchSize { get; init; } = 5000;
    /// <summary>The async daemon is run by several processes that share it through Marten's leader election
    /// (<c>DaemonMode.HotCold</c>: an advisory lock per database; the holder runs the projections, the others wait to take over).</summary>
    public bool HotColdDaemon { get; init; }
}
