using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>A stored event the simulator cannot read, with where it is in the log.</summary>
public sealed class StoredEventException(string session, long seq, string message)
    : Exception($"session {session} seq {seq}: {message}")
{
    public string Session { get; } = session;
    public long Seq { get; } = seq;
}

/// <summary>Stored rows ↔ Domain events. Unknown types and bad data fail loudly with the event's seq: never skipped.</summary>
public static class EventCodec
{
    public static SvaEvent Decode(StoredEvent e)
    {
        try { return SvaJson.Deserialize(e.Type, e.DataJson); }
        catch (EventFormatException ex) { throw new StoredEventException(e.Session, e.Seq, ex.Message); }
    }

    public static SvaEvent Decode(EventData e)
    {
        try { return SvaJson.Deserialize(e.Type, e.DataJson); }
        catch (EventFormatException ex) { throw new StoredEventException(e.Session, e.Seq, ex.Message); }
    }

    /// <summary>An event read as UTF-8 JSON (<see cref="ISessionFold{TDoc}"/>); errors name the session and seq.</summary>
    public static SvaEvent Decode(string session, long seq, string type, ReadOnlySpan<byte> utf8Json)
    {
        try { return SvaJson.Deserialize(type, utf8Json); }
        catch (EventFormatException ex) { throw new StoredEventException(session, seq, ex.Message); }
    }

    public static NewEvent Encode(SvaEvent e, EventMetadata metadata) => new(e, metadata.ToJson());
    public static NewEvent Encode(SvaEvent e, string metadataJson) => new(e, metadataJson);

    /// <summary>The event's metadata (one codec: <see cref="EventMetadata"/>); unreadable metadata names the seq.</summary>
    public static EventMetadata Metadata(StoredEvent e)
    {
        try { return EventMetadata.Parse(e.Metadata); }
        catch (EventFormatException ex) { throw new StoredEventException(e.Session, e.Seq, ex.Message); }
    }

    /// <summary>Folds a session's stored events onto a state, checking that seqs follow without a gap.</summary>
    public static async Task<SvaState> FoldAsync(IAsyncEnumerable<StoredEvent> events, SvaState? from = null, CancellationToken ct = default)
    {
        var s = from ?? new SvaState();
        await foreach (var e in events.WithCancellation(ct))
        {
            if (e.Seq != s.Seq + 1) throw new StoredEventException(e.Session, e.Seq, $"expected seq {s.Seq + 1} (gap or reorder in the log)");
            Evolve.Apply(s, Decode(e));
        }
        return s;
    }

    /// <summary>The same fold over events read without their headers (<see cref="IEventStore.ReadSessionDataAsync"/>).</summary>
    public static async Task<SvaState> FoldAsync(IAsyncEnumerable<EventData> events, SvaState? from = null, CancellationToken ct = default)
    {
        var s = from ?? new SvaState();
        await foreach (var e in events.WithCancellation(ct))
        {
            if (e.Seq != s.Seq + 1) throw new StoredEventException(e.Session, e.Seq, $"expected seq {s.Seq + 1} (gap or reorder in the log)");
            Evolve.Apply(s, Decode(e));
        }
        return s;
    }
}
