using MemoryPack;
using Sva.Domain;

namespace Sva.Projections;

/// <summary>
/// What a snapshot carries beside the state for <c>sva state --blame</c>: for each distinct set-at seq of the state
/// (<see cref="SvaState.SetAt"/>), the event's stored type, its source (<c>file:line</c>), its call and the rule that decided
/// that call. Blame then resolves only the seqs set after the snapshot from the log instead of ~1,000 index look-ups per state
/// at 1M events (README § Provenance). The recorder fills it as it encodes events (<see cref="ProvenanceBook"/>); it is part
/// of the snapshot's payload, so the digest the log records at the snapshot's seq covers it. A snapshot may carry only some
/// of the seqs (a process continuing a session from a snapshot written before this existed), or none: the rest are read
/// from the log as before.
/// </summary>
[MemoryPackable]
public sealed partial class SetAtEventDto
{
    public long Seq { get; set; }
    public string Type { get; set; } = "";
    public string? Source { get; set; }
    /// <summary>The call (null for an event outside any call).</summary>
    public string? Op { get; set; }
    public string? Rule { get; set; }
    /// <summary>The seq of the first event of the call (the one whose metadata carries the call); null outside any call.</summary>
    public long? CallSeq { get; set; }

    /// <summary>The entries of a snapshot's <see cref="StateDto.SetAtEvents"/> (zstd of a MemoryPack array), or empty when it has
    /// none or they do not decode.</summary>
    public static SetAtEventDto[] Read(byte[]? bytes)
    {
        if (bytes is not { Length: > 0 }) return [];
        if (Sva.EventStore.SnapshotCodec.Decompress(Sva.EventStore.SnapshotCodec.ZstdMemoryPack, bytes) is not { } raw) return [];
        try { return MemoryPackSerializer.Deserialize<SetAtEventDto[]>(raw) ?? []; }
        catch (MemoryPackSerializationException) { return []; }
    }
}

/// <summary>
/// The recorder's book of where each event came from (<see cref="SetAtEventDto"/>), kept only for the events a state's rows
/// were last set by: each snapshot taken with it carries the entries of its state's set-at seqs and the book forgets the
/// others. A conflict that re-decides batches clears it (what it knew about uncommitted seqs may be wrong).
/// </summary>
public sealed class ProvenanceBook
{
    private Dictionary<long, SetAtEventDto> entries = [];

    /// <summary>Entries held now (tests; the bench's memory).</summary>
    public int Count => entries.Count;

    /// <summary>Notes the event at <paramref name="seq"/>, the <paramref name="index"/>-th event of a call whose first event is
    /// at <paramref name="callSeq"/>.</summary>
    public void Add(long seq, SvaEvent e, string? source, string op, string? rule, long callSeq) =>
        Add(seq, EventTypes.NameOf(e), source, op, rule, callSeq);

    /// <summary>Notes the event at <paramref name="seq"/> (its stored <paramref name="type"/>) as blame resolved it from the log.</summary>
    public void Add(long seq, string type, string? source, string? op, string? rule, long? callSeq) =>
        entries[seq] = new SetAtEventDto { Seq = seq, Type = type, Source = source, Op = op, Rule = rule, CallSeq = callSeq };

    public bool Knows(long seq) => entries.ContainsKey(seq);

    /// <summary>Starts from what a loaded snapshot carried (entries at or below its seq).</summary>
    public void Seed(IEnumerable<SetAtEventDto> known)
    {
        foreach (var e in known) entries.TryAdd(e.Seq, e);
    }

    /// <summary>Forgets everything (a conflict: seqs decided here were not committed as decided).</summary>
    public void Clear() => entries.Clear();

    /// <summary>The payload of the entries for <paramref name="state"/>'s set-at seqs (null when it knows none); keeps only those.</summary>
    public byte[]? TakeFor(SvaState state)
    {
        var keep = new Dictionary<long, SetAtEventDto>(Math.Min(entries.Count, state.SetAt.Count));
        foreach (var seq in state.SetAt.Values)
            if (seq <= state.Seq && entries.TryGetValue(seq, out var e)) keep.TryAdd(seq, e);
        // events after the state's seq (a batch decided ahead) stay too
        foreach (var (seq, e) in entries)
            if (seq > state.Seq) keep[seq] = e;
        entries = keep;
        var carried = keep.Values.Where(e => e.Seq <= state.Seq).OrderBy(e => e.Seq).ToArray();
        // compressed on its own (zstd of MemoryPack): time travel, which does not read it, then copies ~15 KiB instead of
        // ~100 KiB out of the snapshot's payload (a large-object-heap allocation per load otherwise)
        return carried.Length == 0 ? null : Sva.EventStore.SnapshotCodec.Compress(MemoryPackSerializer.Serialize(carried));
    }
}
