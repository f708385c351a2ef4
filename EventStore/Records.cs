namespace Sva.EventStore;

/// <summary>An event to append. <paramref name="DataJson"/> and <paramref name="MetadataJson"/> must be JSON texts;
/// they are stored as jsonb, i.e. normalized by PostgreSQL (key order, whitespace).
/// <paramref name="Payload"/> is opaque to the store: what the caller encoded, handed unchanged to inline projections in the
/// same process so they need not parse the JSON again (never stored; events read back have none).</summary>
public sealed record NewEvent(string Type, string DataJson, string MetadataJson = "{}", object? Payload = null);

/// <summary>An event as stored. <see cref="DataJson"/> and <see cref="MetadataJson"/> are the jsonb texts as PostgreSQL renders them.</summary>
public sealed record StoredEvent(
    long Position,
    string Session,
    long Seq,
    string Type,
    string DataJson,
    string MetadataJson,
    Guid? CommandId,
    DateTimeOffset RecordedAt,
    byte[] Hash,
    object? Payload = null);

/// <summary>A session (one event stream). <see cref="Version"/> is its last seq (0 when empty).</summary>
public sealed record SessionInfo(string Id, string Kernel, string? Source, DateTimeOffset CreatedAt, long Version);

/// <summary>Outcome of <see cref="PgEventStore.AppendAsync"/>. <see cref="Duplicate"/>: the command id had already appended;
/// nothing new was written and the seqs/positions are those of the earlier append.</summary>
public sealed record AppendResult(string Session, long FirstSeq, long LastSeq, long FirstPosition, long LastPosition, bool Duplicate);

/// <summary>Outcome of <see cref="PgEventStore.VerifyAsync"/>. When not <see cref="Ok"/>, <see cref="FirstBrokenSeq"/> names the
/// first seq whose stored hash (or presence) does not match and <see cref="Reason"/> says why.</summary>
public sealed record VerifyResult(string Session, bool Ok, long EventsChecked, long? FirstBrokenSeq, string? Reason);
