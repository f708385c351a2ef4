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
/// <paramref name="Calls"/> is enumerated once, chunk by chunk (a script streamed from its file is never held whole).
public sealed record RecordCalls(string Session, string Kernel, string? SessionSource, IEnumerable<SourcedCall> Calls, int ChunkSize = 64)
    : IRequest<RecordResult>, IValidatable
{
    /// <summary>Called with each call's outcome as its batch commits (in order). When set, <see cref="RecordResult.Calls"/>
    /// stays empty: memory does not grow with the script.</summary>
    public Func<RecordedCall, ValueTask>? OnRecorded { get; init; }

    /// <summary>Events between snapshots (0: none).</summary>
    public int SnapshotEvery { get; init; } = SnapshotPolicy.DefaultEvery;

    /// <summary>The script's identity (SHA-256 of its bytes). When set, each batch records how far the script got, in its
    /// own transaction: the same script into the same session resumes after its last committed call, and a script that
    /// was recorded completely is refused unless <see cref="Again"/>.</summary>
    public string? ScriptHash { get; init; }

    /// <summary>Append the script even though it was recorded into this session before.</summary>
    public bool Again { get; init; }

    /// <summary>The rule set <see cref="Kernel"/> resolved to (a kernel file's version); when null, <see cref="Kernel"/> is resolved as a release.</summary>
    public KernelVersion? Version { get; init; }

    public IEnumerable<string> Validate()
    {
        if (SessionName.Problem(Session) is { } problem) yield return $"session name {problem}";
        if (Version is null && !KernelVersions.TryGet(Kernel, out _)) yield return $"unsupported kernel version '{Kernel}'; supported: {KernelVersions.SupportedList}";
        if (ChunkSize < 1) yield return "chunk size must be at least 1";
    }
}

public sealed record RecordedCall(int Index, SourcedCall Call, CallOutcome Outcome, long FirstSeq, long LastSeq, IReadOnlyList<SvaEvent> Events);

public sealed record RecordResult(string Session, string Kernel, bool Created, IReadOnlyList<RecordedCall> Calls, int Conflicts, long LastSeq)
{
    /// <summary>Calls of the script that an earlier, interrupted run had committed (skipped now), or 0.</summary>
    public int ResumedAfter { get; init; }

    /// <summary>With --again while another live writer recorded the same script: that writer (this run recorded a full
    /// copy under its own progress record), else null.</summary>
    public string? CopyBeside { get; init; }
}

/// <summary>The script was recorded into this session completely before; appending it again needs --again.</summary>
public sealed class ScriptAlreadyRecordedException(string session, long lastSeq)
    : Exception($"this script was recorded into session '{session}' completely before (up to seq {lastSeq}); to append it once more, add --again")
{
    public string Session { get; } = session;
}

/// <summary>How far a script got in a session: written with each batch (<see cref="SourceProgress"/>).</summary>
public sealed record ScriptProgress(string Hash, int Calls, string? Source, long LastSeq)
{
    public static string IdOf(string session, string hash) => $"run|{session}|{hash}";
    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this);
    public static ScriptProgress? Parse(string json) => System.Text.Json.JsonSerializer.Deserialize<ScriptProgress>(json);
}

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

    // The state each session ended at after this handler's last command, with the session's kernel (which never changes).
    // A command on a cached session skips the session look-up: its one round trip is the append, whose version check
    // catches another writer (a conflict reloads the state from the log and re-decides).
    // The rule set the session resolved to is cached with it: the session's kernel and its first event (which carries a
    // kernel file's definition) never change, so a command on a cached session reads nothing before its append.
    private readonly ConcurrentDictionary<string, (SvaState State, SessionInfo Info, KernelVersion Kernel, ProvenanceBook Book)> states = new();

    public async ValueTask<RecordResult> Handle(RecordCalls request, CancellationToken ct)
    {
        var version = request.Version ?? KernelVersions.Get(request.Kernel);
        // A script recorded here before: refuse it when complete (unless --again), resume it when it was interrupted.
        // "Interrupted" means: no live writer holds the script's lease (RecordingLease), taken before anything is read;
        // a live one refuses this run, or with --again this run records a full copy under a progress record of its own.
        var sourceId = request.ScriptHash is { } h ? ScriptProgress.IdOf(request.Session, h) : null;
        await using var lease = sourceId is null ? null : await RecordingLease.TakeAsync(store, request.Session, sourceId, request.Again, ct);
        if (lease is not null) sourceId = lease.SourceId;
        var hit = states.TryRemove(request.Session, out var cached);
        var info = hit ? cached.Info : await store.GetSessionAsync(request.Session, ct);
        var created = info is null;
        var recorded = info is null ? null : hit ? cached.Kernel : await SessionKernels.ResolveAsync(store, info, ct);
        if (recorded is not null && !SessionKernels.Same(recorded, version))
            throw new SessionKernelMismatchException(request.Session, info!.Kernel, version.Name + (version.Origin is null ? "" : " (kernel file)"));
        var head = hit ? cached.State.Seq : info?.Version ?? 0;

        // where the events the state's rows were set by came from: the snapshots carry it for blame
        var book = hit ? cached.Book : new ProvenanceBook();
        var state = hit
            ? cached.State
            : head == 0 ? new SvaState() : await StateLoader.LoadAsync(store, request.Session, book, ct: ct);
        var results = new List<RecordedCall>();
        var callIndex = 0; // set below, after a resume is known
        var conflicts = 0;
        var resumeAfter = 0;
        if (lease is { Copy: false } && info is not null && await store.FindSourceAsync(sourceId!, ct) is { } earlier
            && ScriptProgress.Parse(earlier.Json) is { } done && done.LastSeq <= head)
        {
            if (earlier.Complete && !request.Again) throw new ScriptAlreadyRecordedException(request.Session, done.LastSeq);
            if (!earlier.Complete) resumeAfter = done.Calls;
        }
        using var chunks = new ChunkWindow(request.Calls, request.ChunkSize, resumeAfter);
        resumeAfter = chunks.Skipped;
        var policy = new SnapshotPolicy(request.SnapshotEvery) { Book = book };
        var recorder = new SessionRecorder(store, request.Session, new NewSession(version.Name, request.SessionSource)
        {
            KernelGiven = request.Kernel.Trim() == version.Name ? null : request.Kernel.Trim(),
        });

        Prepared Prepare(int k)
        {
            var before = state.Seq;
            var decided = new List<(SourcedCall Call, IReadOnlyList<SvaEvent> Events, CallOutcome Outcome)>(chunks[k].Length);
            var encoded = new List<NewEvent>();
            var snapshots = new List<SnapshotToSave>();
            var commandId = Guid.CreateVersion7(); // time-ordered: the event-id index grows at its right edge
            foreach (var call in chunks[k])
            {
                var seqBefore = state.Seq;
                var t0 = AppendProfile.Now();
                var events = SvaKernel.Execute(version, state, call.Call);
                var outcome = CallOutcome.Of(call.Call, events, state);
                if (version.Origin is not null) outcome = outcome with { Rule = version.Explain(outcome.Rule) };
                decided.Add((call, events, outcome));
                t0 = AppendProfile.Add(AppendProfile.Stage.Decide, t0);
                // provenance's shortcuts: the call's first event carries the rule blame shows for it (the rule id, as blame
                // derives it from the call's events), the others how far back that first event is
                var rule = CallOutcome.RuleIdOf(call.Call, events);
                for (var i = 0; i < events.Count; i++)
                    encoded.Add(EventCodec.Encode(events[i], new EventMetadata(commandId, call.Source, i == 0 ? call.Call : null)
                    {
                        // the session's first event carries a kernel file's resolved content (replays after the file is gone)
                        KernelDefinition = seqBefore == 0 && i == 0 ? version.Origin?.Definition : null,
                        HasRule = i == 0, Rule = i == 0 ? rule : null, CallOffset = i == 0 ? null : i,
                    }));
                for (var i = 0; i < events.Count; i++) book.Add(seqBefore + 1 + i, events[i], call.Source, call.Call.Op, rule, seqBefore + 1);
                t0 = AppendProfile.Add(AppendProfile.Stage.EncodeMetadata, t0);
                if (policy.After(state, seqBefore) is { } snap) { snapshots.Add(snap); AppendProfile.Add(AppendProfile.Stage.Snapshot, t0); }
            }
            SourceProgress? progress = null;
            if (sourceId is not null)
            {
                var through = resumeAfter + chunks.CallsThrough(k);
                progress = new SourceProgress(sourceId, request.Session, "run", Complete: chunks.IsLast(k),
                    new ScriptProgress(request.ScriptHash!, through, chunks[k][^1].Source, state.Seq).ToJson());
            }
            return new Prepared(k, new PreparedBatch(before, commandId, encoded) { Snapshots = snapshots, Progress = progress }, decided);
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

        callIndex = resumeAfter;
        Prepared? inflight = null;
        var next = 0;
        var attempts = 0;
        try
        {
            while (true)
            {
                var prepared = next >= 0 && chunks.Has(next) ? Prepare(next) : null;
                try
                {
                    await recorder.DrainAsync();
                }
                catch (ConcurrencyException) when (attempts++ < MaxConflictRetries && inflight is not null)
                {
                    conflicts++;
                    book.Clear(); // what it noted of the discarded decisions may name seqs another writer took
                    state = await StateLoader.LoadAsync(store, request.Session, book, ct: ct);
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
        // Cached only with the session as the store described it (a session created here is looked up once more next time).
        if (info is not null && recorded is not null && state.Seq > 0) states[request.Session] = (state, info, recorded, book);
        return new RecordResult(request.Session, version.Name, created && state.Seq > 0, results, conflicts, state.Seq)
        {
            ResumedAfter = resumeAfter,
            CopyBeside = lease is { Copy: true } ? lease.OtherWriter : null,
        };
    }

    /// <summary>The calls in chunks, read from the enumerable as they are needed. Only the chunks a conflict may re-decide
    /// (the one in flight and the one prepared) are kept: memory does not grow with the script.</summary>
    private sealed class ChunkWindow : IDisposable
    {
        private readonly IEnumerator<SourcedCall> source;
        private readonly int size;
        private readonly List<(SourcedCall[] Calls, int Through)> window = [];
        private int first; // chunk index of window[0]
        private bool ended;

        public ChunkWindow(IEnumerable<SourcedCall> calls, int size, int skip)
        {
            source = calls.GetEnumerator();
            this.size = size;
            while (Skipped < skip && source.MoveNext()) Skipped++;
        }

        /// <summary>Calls skipped at the start (a resume): at most as many as the script has.</summary>
        public int Skipped { get; }

        public SourcedCall[] this[int k] { get { Fill(k); return window[k - first].Calls; } }

        public bool Has(int k)
        {
            Fill(k);
            return k - first < window.Count;
        }

        /// <summary>Calls in chunks 0..k (after the skipped ones).</summary>
        public int CallsThrough(int k) { Fill(k); return window[k - first].Through; }

        public bool IsLast(int k) => !Has(k + 1);

        private void Fill(int k)
        {
            if (k < first) throw new InvalidOperationException($"chunk {k} was already released");
            // Chunks before k - 2 can no longer be re-decided (asking whether k - 1 is the last reads chunk k): release them.
            var drop = Math.Min(window.Count, Math.Max(0, k - 2 - first));
            if (drop > 0) { window.RemoveRange(0, drop); first += drop; }
            while (!ended && k - first >= window.Count)
            {
                var chunk = new List<SourcedCall>(size);
                while (chunk.Count < size && source.MoveNext()) chunk.Add(source.Current);
                if (chunk.Count < size) ended = true;
                if (chunk.Count == 0) break;
                total += chunk.Count;
                window.Add((chunk.ToArray(), total));
            }
        }

        private int total; // calls read so far (after the skipped ones)

        public void Dispose() => source.Dispose();
    }

    private sealed record Prepared(int Index, PreparedBatch Batch, List<(SourcedCall Call, IReadOnlyList<SvaEvent> Events, CallOutcome Outcome)> Decided);
}
