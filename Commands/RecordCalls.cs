using System.Collections.Concurrent;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;
using Sva.Projections;

namespace Sva.Commands;

/// <summary>A kernel call with where it came from (<c>file:line</c>, or null for a call typed by hand).</summary>
public sealed record SourcedCall(KernelCall Call, string? Source);

/// <summary>
/// Record calls into a session (created if missing): each is decided against the state it is appended
/// on. <paramref name="ChunkSize"/> calls share one append; a version conflict re-decides the chunk.
/// </summary>
public sealed record RecordCalls(string Session, string Kernel, string? SessionSource, IReadOnlyList<SourcedCall> Calls, int ChunkSize = 64)
    : IRequest<RecordResult>, IValidatable
{
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Session)) yield return "session name is empty";
        else if (Session.Length > 200 || Session.Any(char.IsControl)) yield return $"session name '{Session}' is not usable";
        if (!KernelVersions.TryGet(Kernel, out _)) yield return $"unsupported kernel version '{Kernel}'; supported: {KernelVersions.SupportedList}";
        if (ChunkSize < 1) yield return "chunk size must be at least 1";
    }
}

public sealed record RecordedCall(int Index, SourcedCall Call, CallOutcome Outcome, long FirstSeq, long LastSeq, IReadOnlyList<SvaEvent> Events);

public sealed record RecordResult(string Session, string Kernel, bool Created, IReadOnlyList<RecordedCall> Calls, int Conflicts, long LastSeq);

/// <summary>The session exists and was recorded under another kernel version.</summary>
public sealed class SessionKernelMismatchException(string session, string recorded, string requested)
    : Exception($"session '{session}' was recorded with kernel {recorded}; it cannot be continued under {requested} (use a new --session, or 'sva compare')");

public sealed class RecordCallsHandler(PgEventStore store, int snapshotEvery = RecordCallsHandler.DefaultSnapshotEvery)
    : IRequestHandler<RecordCalls, RecordResult>
{
    /// <summary>Events between snapshots (see README's time-travel figures for how it was chosen).</summary>
    public const int DefaultSnapshotEvery = 4096;
    private const int MaxConflictRetries = 1000;

    private readonly ConcurrentDictionary<string, SvaState> states = new();

    public async Task<RecordResult> HandleAsync(RecordCalls request, CancellationToken ct)
    {
        var version = KernelVersions.Get(request.Kernel);
        var created = false;
        var info = await store.GetSessionAsync(request.Session, ct);
        if (info is null)
        {
            try { info = await store.CreateSessionAsync(request.Session, version.Name, request.SessionSource, ct); created = true; }
            catch (SessionExistsException) { info = await store.GetSessionAsync(request.Session, ct) ?? throw new InvalidOperationException($"session {request.Session} vanished"); }
        }
        if (!KernelVersions.TryGet(info.Kernel, out var recorded) || recorded.Name != version.Name)
            throw new SessionKernelMismatchException(request.Session, info.Kernel, version.Name);

        var state = states.TryGetValue(request.Session, out var cached) && cached.Seq == info.Version
            ? cached
            : await StateLoader.LoadAsync(store, request.Session, ct: ct);
        states.TryRemove(request.Session, out _);
        var results = new List<RecordedCall>(request.Calls.Count);
        var conflicts = 0;
        var chunks = request.Calls.Chunk(request.ChunkSize).ToList();

        // Decides one chunk on the current state (which it advances) and encodes its events.
        Prepared Prepare(int k)
        {
            var before = state.Seq;
            var chunk = chunks[k];
            var decided = new List<(SourcedCall Call, IReadOnlyList<SvaEvent> Events, CallOutcome Outcome)>(chunk.Length);
            var encoded = new List<NewEvent>();
            var snapshots = new List<(long Seq, string Json)>();
            var commandId = Guid.NewGuid();
            foreach (var call in chunk)
            {
                var boundary = snapshotEvery > 0 ? state.Seq / snapshotEvery : 0;
                var events = SvaKernel.Execute(version, state, call.Call);
                decided.Add((call, events, CallOutcome.Of(call.Call, events, state)));
                for (var i = 0; i < events.Count; i++)
                    encoded.Add(EventCodec.Encode(events[i], Metadata(commandId, call, i == 0)));
                // Snapshot policy: one snapshot right after the call that crosses each multiple of snapshotEvery,
                // so snapshot seqs do not depend on how calls are chunked; saved only once the append committed.
                if (snapshotEvery > 0 && state.Seq / snapshotEvery > boundary) snapshots.Add((state.Seq, state.ToSnapshotJson()));
            }
            return new Prepared(k, before, commandId, decided, encoded, snapshots);
        }

        // A two-stage pipeline: while chunk k's append is in flight, chunk k+1 is decided on the state that
        // already includes k. A version conflict on k discards both decisions, reloads the state from the
        // log and re-decides from k: every call is decided against the state it is appended on.
        var current = chunks.Count > 0 ? Prepare(0) : null;
        var attempts = 0;
        while (current is not null)
        {
            var append = store.AppendAsync(request.Session, current.Before, current.CommandId, current.Encoded, ct);
            var next = current.Index + 1 < chunks.Count ? Prepare(current.Index + 1) : null;
            AppendResult appended;
            try
            {
                appended = await append;
            }
            catch (ConcurrencyException) when (attempts++ < MaxConflictRetries)
            {
                conflicts++;
                state = await StateLoader.LoadAsync(store, request.Session, ct: ct);
                current = Prepare(current.Index);
                continue;
            }
            catch
            {
                states.TryRemove(request.Session, out _);
                throw;
            }
            if (appended.Duplicate) throw new InvalidOperationException($"command {current.CommandId} was already recorded");
            var seq = appended.FirstSeq;
            foreach (var (call, events, outcome) in current.Decided)
            {
                results.Add(new RecordedCall(results.Count, call, outcome, seq, seq + events.Count - 1, events));
                seq += events.Count;
            }
            foreach (var (snapSeq, json) in current.Snapshots) await store.SaveSnapshotAsync(request.Session, snapSeq, json, ct);
            current = next;
        }
        states[request.Session] = state;
        return new RecordResult(request.Session, version.Name, created, results, conflicts, state.Seq);
    }

    private sealed record Prepared(int Index, long Before, Guid CommandId,
        List<(SourcedCall Call, IReadOnlyList<SvaEvent> Events, CallOutcome Outcome)> Decided, List<NewEvent> Encoded, List<(long Seq, string Json)> Snapshots);

    /// <summary>Each event names its command and source; the first event of a call also carries the call itself.</summary>
    private static string Metadata(Guid commandId, SourcedCall call, bool first)
    {
        // Written as text: building a JsonObject per event cost more than encoding the event itself.
        var sb = new System.Text.StringBuilder(first ? 192 : 80);
        sb.Append("{\"cmd\":\"").Append(commandId.ToString()).Append('"');
        if (call.Source is not null) sb.Append(",\"source\":\"").Append(System.Text.Json.JsonEncodedText.Encode(call.Source).ToString()).Append('"');
        if (first) sb.Append(",\"call\":").Append(SvaJson.SerializeCall(call.Call));
        return sb.Append('}').ToString();
    }
}
