using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Captures;
using Sva.Formats.Import;
using Sva.Projections;

namespace Sva.Commands;

/// <summary>
/// The counters of an import's result (calls by op, failures, conformance mismatches, skipped lines, PASIDs): counted as
/// events are decided, and recounted from the log for the batches committed before a resume.
/// </summary>
internal sealed class ImportTally
{
    /// <summary>At most this many failures and conformance mismatches are listed in a result (all are counted).</summary>
    public const int ListLimit = 200;

    private readonly ConformanceChecker checker = new();
    public List<ConformanceFinding> Mismatches { get; } = new();
    public List<ImportFailure> Failures { get; } = new();
    public Dictionary<string, long> SkippedByReason { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, long> CallsByOp { get; } = new(StringComparer.Ordinal);
    public HashSet<int> Pasids { get; } = new();
    public long Recognized { get; private set; }
    public long Skipped { get; private set; }
    public long Calls { get; private set; }
    public long InferredCalls { get; private set; }
    public long FailureCount { get; private set; }
    public long ConformanceChecked => checker.Checked;
    public long MismatchCount => checker.Mismatches;

    public void SkippedLine(string reason)
    {
        Skipped++;
        var key = ReasonKey(reason);
        SkippedByReason[key] = SkippedByReason.GetValueOrDefault(key) + 1;
    }

    public void Recognised(Observation o)
    {
        Recognized++;
        if (o.Pasid is { } p && Pasids.Count < 1_000_000) Pasids.Add(p);
    }

    /// <summary>An event decided at <paramref name="seq"/>.</summary>
    public void Decided(DecidedEvent d, long seq, string? source)
    {
        if (d.FirstOfCall && d.Call is { } call) Call(call.Call.Op, call.Inferred);
        Event(seq, d.Event, source, d.Call?.Call.Op ?? "?");
    }

    /// <summary>The conformance checker's findings that wait for the end of the capture.</summary>
    public void Complete()
    {
        foreach (var f in checker.Complete()) Mismatch(f);
    }

    /// <summary>Counts of the batches committed before a resume, and the conformance state, from the log.</summary>
    public async Task ReplayAsync(IEventStore store, string session, CancellationToken ct)
    {
        await foreach (var stored in store.ReadSessionAsync(session, 1, long.MaxValue, ct))
        {
            var e = EventCodec.Decode(stored);
            var meta = EventCodec.Metadata(stored);
            var op = "?";
            if (meta.Call is { } call)
            {
                op = call.Op;
                Call(op, meta.Inferred);
            }
            Event(stored.Seq, e, meta.Source, op);
        }
    }

    private void Call(string op, bool inferred)
    {
        Calls++;
        if (inferred) InferredCalls++;
        CallsByOp[op] = CallsByOp.GetValueOrDefault(op) + 1;
    }

    private void Event(long seq, SvaEvent e, string? source, string op)
    {
        if (ImportDecider.IsFailure(e)) Failure(seq, source, op, e);
        foreach (var f in checker.Add(new SeqEvent(seq, e, source))) Mismatch(f);
    }

    private void Failure(long seq, string? source, string op, SvaEvent e)
    {
        FailureCount++;
        if (Failures.Count >= ListLimit) return;
        var reason = e switch
        {
            BindFailed b => $"-{b.Errno} {b.Reason}",
            UnbindRejected u => u.Reason,
            CallFailed c => (c.Errno is { } n ? $"-{n} " : "") + c.Reason,
            _ => e.GetType().Name,
        };
        Failures.Add(new ImportFailure(seq, source, op, reason));
    }

    private void Mismatch(ConformanceFinding f)
    {
        if (Mismatches.Count < ListLimit) Mismatches.Add(f);
    }

    private static string ReasonKey(string reason)
    {
        foreach (var prefix in new[] { "malformed", "truncated", "incomplete", "orphan" })
            if (reason.StartsWith(prefix, StringComparison.Ordinal)) return prefix;
        return reason.Length <= 80 ? reason : reason[..80];
    }
}
