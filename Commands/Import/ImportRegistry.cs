using System.Text.Json.Nodes;
using Sva.EventStore;
using Sva.Projections;

namespace Sva.Commands;

/// <summary>
/// The import registry: one source document per import, keyed by its identity (content hash, kernel, format, mapping
/// version), written with each batch and, complete, with the run's summary.
/// </summary>
public sealed class ImportRegistry(IEventStore store)
{
    /// <summary>The version of the observation → call mapping (<see cref="Sva.Formats.Import.ObservationMapper"/>). Part of an import's
    /// identity: bump it when the mapping changes what a capture becomes, so that re-importing makes a new session
    /// instead of reporting the one the old mapping made.</summary>
    public static readonly int MappingVersion = 1;

    public readonly record struct Entry(string Session, string Hash, string Kernel, string Format, bool Complete, JsonObject? Summary);

    /// <summary>The identity of an import: content hash, kernel, format and mapping version.</summary>
    private static string SourceId(string hash, string kernel, string format) => $"import|{hash}|{kernel}|{format}|m{MappingVersion}";

    private static Entry? Read(SourceProgress? p)
    {
        if (p is null || JsonNode.Parse(p.Json) is not JsonObject j) return null;
        return new Entry(p.Session, (string?)j["hash"] ?? "", (string?)j["kernel"] ?? "", (string?)j["format"] ?? "", p.Complete, j["summary"] as JsonObject);
    }

    public async Task<Entry?> FindAsync(string hash, string kernel, string format, CancellationToken ct) =>
        Read(await store.FindSourceAsync(SourceId(hash, kernel, format), ct));

    public async Task<Entry?> FindBySessionAsync(string session, CancellationToken ct) =>
        Read(await store.FindSourceBySessionAsync(session, "import", ct));

    /// <summary>The import's registry document as written with each batch (and, complete, with its summary).</summary>
    public static SourceProgress Progress(string session, string hash, string kernel, string format, string file, long? lines, ImportResult? done) =>
        new(SourceId(hash, kernel, format), session, "import", done is not null, new JsonObject
        {
            ["hash"] = hash, ["kernel"] = kernel, ["format"] = format, ["mapping"] = MappingVersion, ["file"] = file, ["lines"] = lines,
            ["summary"] = done?.ToJson(),
        }.ToJsonString());

    /// <summary>
    /// The registry's "complete" (a document a writer can change) is trusted for the already-imported shortcut only when
    /// the hash-chained log agrees with its summary: the session ends at the summary's last seq, and the event there carries
    /// the checkpoint of the summary's last batch. Otherwise the import is treated as interrupted and resumes from the log's
    /// own checkpoint (appending whatever the log lacks).
    /// </summary>
    public async Task<bool> CompleteInLogAsync(string session, JsonObject summary, CancellationToken ct)
    {
        if (await store.GetSessionAsync(session, ct) is not { } info) return false;
        long events; int batches;
        try { events = (long?)summary["events"] ?? -1; batches = (int?)summary["batches"] ?? -1; }
        catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException) { return false; }
        if (events != info.Version || events < 1) return false;
        await foreach (var e in store.ReadSessionAsync(session, events, events, ct))
            return EventCodec.Metadata(e).Import is { } checkpoint && checkpoint.Batch == batches;
        return false;
    }
}
