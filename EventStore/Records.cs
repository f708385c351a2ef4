namespace Sva.EventStore;

/// <summary>An event to append: <paramref name="Data"/> is a registered event object (its CLR type has a Marten alias, the
/// stored type name); <paramref name="Metadata"/> is the caller's metadata text, stored and hashed as it is (opaque to the store).</summary>
public sealed record NewEvent(object Data, string Metadata);

/// <summary>An event as stored. <see cref="DataJson"/> is the jsonb text PostgreSQL renders; <see cref="Metadata"/> the text
/// the writer gave (chain version 1) or the stored JSON value's compact canonical text (version 2); <see cref="Position"/> Marten's global <c>seq_id</c>; <see cref="StateDigest"/> the SHA-256 (hex) of the
/// snapshot taken at this seq, when one was.</summary>
public sealed record StoredEvent(
    long Position,
    string Session,
    long Seq,
    string Type,
    string DataJson,
    string Metadata,
    Guid? CommandId,
    DateTimeOffset RecordedAt,
    byte[] Hash,
    string? StateDigest = null)
{
    /// <summary>The hash-chain version the event was written with (<see cref="ChainHeaders"/>): 1 before issue 15, 2 since.</summary>
    public int Chain { get; init; } = 1;

    /// <summary>Chain version 2: the metadata is stored as a JSON value and <see cref="Metadata"/> is its compact canonical text.</summary>
    public bool MetadataIsJson { get; init; }
}

/// <summary>An event's seq, stored type and data only (no metadata, hash or time): what a fold needs, read without the header
/// columns (<see cref="IEventStore.ReadSessionDataAsync"/>: time travel's tail).</summary>
public sealed record EventData(string Session, long Seq, string Type, string DataJson);

/// <summary>A session (one Marten event stream). <see cref="Version"/> is its last seq (the stream version).</summary>
public sealed record SessionInfo(string Id, string Kernel, string? Source, DateTimeOffset CreatedAt, long Version)
{
    /// <summary>The kernel as the user named it (<c>6.8.0-31-generic</c>, a kernel file's path) when that is not
    /// <see cref="Kernel"/> (the rule set it resolved to, or a kernel file's name); null for sessions recorded before.</summary>
    public string? KernelGiven { get; init; }
}

/// <summary>Who a new session is: written with its first events, in the same transaction (a session exists once it has an event).</summary>
public sealed record NewSession(string Kernel, string? Source)
{
    /// <summary>The kernel as the user named it, kept beside the rule set it resolved to (<see cref="SessionInfo.KernelGiven"/>).</summary>
    public string? KernelGiven { get; init; }
}

/// <summary>A snapshot (a cache of the state at <paramref name="Seq"/>) written in the append that reaches that seq: the caller's
/// <paramref name="Payload"/> in the format <paramref name="Encoding"/> names (<see cref="SnapshotCodec"/>; the store compresses it).
/// The SHA-256 of the payload (<see cref="Digest"/>) is recorded in the hash-chained log at that seq, so a snapshot changed later
/// is detected and not used.</summary>
public sealed record SnapshotToSave(long Seq, short Encoding, byte[] Payload)
{
    /// <summary>A snapshot as JSON text (<see cref="SnapshotCodec.ZstdUtf8"/>; its digest is that of its UTF-8 bytes).</summary>
    public SnapshotToSave(long seq, string json) : this(seq, SnapshotCodec.ZstdUtf8, System.Text.Encoding.UTF8.GetBytes(json)) { }

    /// <summary>What the log records at <see cref="Seq"/> (header "state"): SHA-256 (hex) of <see cref="Payload"/>.</summary>
    public string Digest => SnapshotCodec.Digest(Payload);

    /// <summary>The bytes stored in the snapshot row: the payload compressed.</summary>
    public byte[] Compressed() => SnapshotCodec.Compress(Payload);
}

/// <summary>Progress of a recording source (an imported capture, a script run) written with a batch, for resume and
/// idempotency: <paramref name="Id"/> identifies the source (content hash, kernel, …), <paramref name="Json"/> is the caller's.</summary>
public sealed record SourceProgress(string Id, string Session, string Kind, bool Complete, string Json);

/// <summary>
/// One append: events for <paramref name="Session"/> expected to be at <paramref name="ExpectedVersion"/> (its last seq),
/// with what goes into the same transaction: the session's identity (first append only), snapshots, a source's progress.
/// </summary>
public sealed record AppendBatch(string Session, long ExpectedVersion, Guid CommandId, IReadOnlyList<NewEvent> Events)
{
    public NewSession? Create { get; init; }
    public IReadOnlyList<SnapshotToSave> Snapshots { get; init; } = [];
    public SourceProgress? Progress { get; init; }
}

/// <summary>Outcome of an append. <see cref="Duplicate"/>: the command id had already appended; nothing new was written
/// and the seqs/positions are those of the earlier append.</summary>
public sealed record AppendResult(string Session, long FirstSeq, long LastSeq, long FirstPosition, long LastPosition, bool Duplicate);

/// <summary>Outcome of a verification. When not <see cref="Ok"/>, <see cref="FirstBrokenSeq"/> names the first seq whose
/// stored hash (or presence) does not match and <see cref="Reason"/> says why. <see cref="Warnings"/>: caches that were
/// found altered (a snapshot whose digest the log does not vouch for) — never used, but named.</summary>
public sealed record VerifyResult(string Session, bool Ok, long EventsChecked, long? FirstBrokenSeq, string? Reason)
{
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>A snapshot as loaded: its payload (uncompressed) in the format <see cref="Encoding"/> names (<see cref="SnapshotCodec"/>;
/// snapshot documents of earlier versions load as <see cref="SnapshotCodec.ZstdUtf8"/>). Returned only when the payload's
/// SHA-256 is the digest the log recorded at <see cref="Seq"/>. The caller decodes the payload (one decoder, Projections' StateSnapshot).</summary>
public sealed record LoadedSnapshot(long Seq, short Encoding, byte[] Payload)
{
    public LoadedSnapshot(long seq, string json) : this(seq, SnapshotCodec.ZstdUtf8, System.Text.Encoding.UTF8.GetBytes(json)) { }

    /// <summary>The payload as text when it is JSON (<see cref="SnapshotCodec.ZstdUtf8"/>), else null.</summary>
    public string? Json => Encoding == SnapshotCodec.ZstdUtf8 ? System.Text.Encoding.UTF8.GetString(Payload) : null;

    public bool Equals(LoadedSnapshot? other) =>
        other is not null && Seq == other.Seq && Encoding == other.Encoding && Payload.AsSpan().SequenceEqual(other.Payload);

    public override int GetHashCode() => HashCode.Combine(Seq, Encoding, Payload.Length);
}

/// <summary>A projection's progress as Marten's daemon keeps it.</summary>
public sealed record ProjectionProgress(string Name, string Mode, long Position);

/// <summary>An event read with the group it belongs to (<see cref="IEventStore.ReadGroupsAsync"/>): <see cref="GroupSeq"/> and
/// <see cref="GroupMetadata"/> are the group's first event (null when the event is in no group), <see cref="GroupTypes"/> and
/// <see cref="GroupFields"/> the type and asked-for data field of each event of the group, in seq order.</summary>
public sealed record GroupedEvent(long Seq, string Type, string DataJson, string Metadata, long? GroupSeq, string? GroupMetadata,
    IReadOnlyList<string> GroupTypes, IReadOnlyList<string?> GroupFields);
