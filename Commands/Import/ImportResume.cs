using Sva.EventStore;
using Sva.Projections;

namespace Sva.Commands;

/// <summary>Resuming an interrupted import: its checkpoint is the last event's metadata (the batch and the items it covered).</summary>
internal static class ImportResume
{
    /// <summary>The checkpoint of the session's last event (<paramref name="head"/>); an event no import batch wrote cannot be resumed.</summary>
    public static async Task<ImportCheckpoint> ReadCheckpointAsync(IEventStore store, string session, long head, CancellationToken ct)
    {
        await foreach (var e in store.ReadSessionAsync(session, head, head, ct))
        {
            if (EventCodec.Metadata(e).Import is { } imp) return imp;
            throw new ImportInputException($"session '{session}' ends with an event (seq {e.Seq}) that no import batch wrote: it cannot be resumed as an import");
        }
        throw new InvalidOperationException($"session {session}: seq {head} is missing");
    }
}
