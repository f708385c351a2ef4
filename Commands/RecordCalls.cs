using System.Collections.Concurrent;
using Sva.Domain;
using Mediator;
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
    /// <summary>Called with each call's outcome as its batch commits (in order). When set, <see cref="RecordResult.Calls"/>
    /// stays empty: memory does not grow with the script.</summary>
    public Func<RecordedCall, ValueTask>? OnRecorded { get; init; }

    /// <summary>Events between snapshots (0: none).</summary>
    public int SnapshotEvery { get; init; } = SnapshotPolicy.DefaultEvery;

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Session)) yield return "session name is empty";
        else if (Session.Length > 200) yield return $"session name is {Session.Length} characters long; the limit is 200";
        else if (Session.Any(char.IsControl)) yield return "session name contains a control character";
        if (!KernelVersions.TryGet(Kernel, out _)) yield return $"unsupported kernel version '{Kernel}'; supported: {KernelVersions.SupportedList}";
        if (ChunkSize < 1) yield return "chunk size must be at least 1";
    }
}

public sealed record RecordedCall(int Index, SourcedCall Call, CallOutcome Outcome, long FirstSeq, long LastSeq, IReadOnlyList<SvaEvent> Events);

public sealed record RecordResult(string Session, string Kernel, bool Created, IReadOnlyList<RecordedCall> Calls, int Conflicts, long LastSeq);

/// <summary>The session exists and was recorded under another kernel version.</summary>
public sealed class SessionKernelMismatchException(string session, string recorded, string requested)
    : Exception($"session '{session}' was recorded with kernel {recorded}; it cannot be continued under {requested} (use a new --session, or 'sva compare')");

/// <summary>
/// Records calls into a session (created with its first events): each is decided against the state it is appended on.
/// <see cref="RecordCalls.ChunkSize"/> calls share one append; while chunk k is written, chunk k+1 is decided on the
/// state that includes k (<see cref="SessionRecorder"/>). A version conflict on k discards both decisions, reloads the
/// state from the log and re-decides from k.
/// </summary>
public sealed class RecordCallsHandler(IEventStore store) : IRequestHandler<RecordCalls, RecordResult>
{
    private const int MaxConflictRetries = 1000;

    private readonly ConcurrentDictionary<string, SvaState> states = new();

    public async ValueTask<RecordResult> Handle(RecordCalls request, CancellationToken ct)
    {
        var version = KernelVersions.Get(request.Kernel);
        var info = await store.GetSessionAsync(request.Session, ct);
        var created = info is null;
        if (info is not null && (!KernelVersions.TryGet(info.Kernel, out var recorded) || recorded.Name != version.Name))
            throw new SessionKernelMismatchException(request.Session, info.Kernel, version.Name);
        var head = info?.Version ?? 0;

        var state = states.TryRemove(request.Session, out var cached) && cached.Seq == head
            ? cached
            : head == 0 ? new SvaState() : await StateLoader.LoadAsync(store, request.Session, ct: ct);
        var results = new List<RecordedCall>();
        var callIndex = 0;
        var conflicts = 0;
        var chunks = request.Calls.Chunk(request.ChunkSize).ToList();
        var policy = new SnapshotPolicy(request.SnapshotEvery);
        policy.Start(state.Seq);
        var recorder = new SessionRecorder(store, request.Session, new NewSession(version.Name, request.SessionSource));

        Prepared Prepare(int k)
        {
            var before = state.Seq;
            var decided = new List<(SourcedCall Call, IReadOnlyList<SvaEvent> Events, CallOutcome Outcome)>(chunks[k].Length);
            var encoded = new List<NewEvent>();
            var snapshots = new List<SnapshotToSave>();
            var commandId = Guid.NewGuid();
            foreach (var call in chunks[k])
            {
                var seqBefore = state.Seq;
                var events = SvaKernel.Execute(version, state, call.Call);
                decided.Add((call, events, CallOutcome.Of(call.Call, events, state)));
                for (var i = 0; i < events.Count; i++)
                    encoded.Add(EventCodec.Encode(events[i], new EventMetadata(commandId, call.Source, i == 0 ? call.Call : null)));
                if (policy.After(state, seqBefore) is { } snap) snapshots.Add(snap);
            }
            return new Prepared(k, new PreparedBatch(before, commandId, encoded) { Snapshots = snapshots }, decided);
        }

        async Task Emit(Prepared p)
        {
            var seq = p.Batch.ExpectedVersion + 1;
            foreach (var (call, events, outcome) in p.Decided)
            {
                var r = new RecordedCall(callIndex++, call, outcome, seq, seq + events.Count - 1, events);
                seq += events.Count;
                if (request.OnRecorded is { } on) await on(r);
                else results.Add(r);
            }
        }

        Prepared? inflight = null;
        var next = 0;
        var attempts = 0;
        try
        {
            while (true)
            {
                var prepared = next < chunks.Count && next >= 0 ? Prepare(next) : null;
                try
                {
                    await recorder.DrainAsync();
                }
                catch (ConcurrencyException) when (attempts++ < MaxConflictRetries && inflight is not null)
                {
                    conflicts++;
                    state = await StateLoader.LoadAsync(store, request.Session, ct: ct);
                    policy.Start(state.Seq);
                    next = inflight.Index;
                    inflight = null;
                    continue;
                }
                if (inflight is not null) await Emit(inflight);
                inflight = null;
                if (prepared is null) break;
                await recorder.EnqueueAsync(prepared.Batch, ct);
                inflight = prepared;
                next++;
            }
        }
        catch
        {
            states.TryRemove(request.Session, out _);
            await recorder.DrainQuietlyAsync();
            throw;
        }
        states[request.Session] = state;
        return new RecordResult(request.Session, version.Name, created && state.Seq > 0, results, conflicts, state.Seq);
    }

    private sealed record Prepared(int Index, PreparedBatch Batch, List<(SourcedCall Call, IReadOnlyList<SvaEvent> Events, CallOutcome Outcome)> Decided);
}
